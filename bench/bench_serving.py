"""Serving benchmark: the mlkit BentoML service under load, against an in-process ceiling and a minimal app.

1. Trains a small model (default architecture, few rows: inference cost does not depend on them), registers and
   promotes it in a temporary MLKIT_HOME.
2. In-process ceiling: `Predictor.predict` rate on ready 1-row and 100-row frames; plus the cost of each step of
   the service's request path measured alone (pydantic validation + dump, DataFrame construction, transform, torch,
   `Scorer.score`, the prediction log, the Prometheus observation).
3. Load (wrk, else bench/loadgen.py) against `mlkit serve` and against bench/minimal_app.py (Starlette + uvicorn):
   single-row POST /predict at concurrency 1, 8, 64 and 100-row bodies at concurrency 8; a warm-up, then a measured
   window. The mlkit service is restarted for each scenario (a batcher that kept state from past load would show in the
   `single_c1_after_c64` run). Both servers use one torch thread (MLKIT_TORCH_THREADS default).
   Then the whole machine, the goals' setting: per scenario, side by side and each freshly started with 2 worker
   processes, nothing pinned: mlkit, mlkit serving its int8 derived model (`optimize.derive(int8=True)`, registered
   only when it passes parity; `--no-int8` skips it), a vanilla BentoML service of the same model (bench/vanilla_bento.py)
   and the hand-written Starlette/uvicorn app on mlkit's records path (bench/minimal_app.py --workers 2).
4. Profile: py-spy samples the BentoML worker process under single-row load; the folded stacks are attributed to
   the stages of a request (reports/bench/serving_profile.svg is the flame graph, serving_profile.txt the raw stacks).

All traffic goes to 127.0.0.1; every load run is bounded in time (and wrk/loadgen in requests by that time).

    .venv/bin/python bench/bench_serving.py [--duration 10] [--warmup 2] [--profiles c64 c8 batch100_c8] [--skip-profile]
"""
from __future__ import annotations
import argparse, json, math, os, re, shutil, subprocess, sys, time
from collections import Counter, defaultdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
TMP = common.isolate()

import numpy as np, pandas as pd

LUA = common.BENCH/'predict.lua'
# CPU pinning: the load generator on the last core, the servers on the others (less noise on a small machine)
PIN = dict(client=None, server=None)
PINNING = dict(on=True)     # off for the whole-machine runs (mlkit with 2 workers: client and server share the cores)

def pin(kind) -> list:
    cpus = PIN.get(kind) if PINNING['on'] else None
    return ['taskset', '-c', cpus] if cpus else []

# ---------------------------------------------------------------------------------------------------------------
# request bodies

def records(df: pd.DataFrame) -> list:
    out = []
    for r in df.to_dict('records'):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else (v.item() if isinstance(v, np.generic) else v))
                    for k, v in r.items()})
    return out

def write_bodies(test: pd.DataFrame, target: str) -> dict:
    recs = records(test.drop(columns=[target]))
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(recs))
    one = [json.dumps(dict(rows=[recs[i]])) for i in idx[:500]]
    hundred = [json.dumps(dict(rows=[recs[i] for i in idx[k * 100:(k + 1) * 100]])) for k in range(20)]
    paths = {}
    for name, lines in (('single', one), ('batch100', hundred)):
        p = TMP/f'bodies_{name}.jsonl'; p.write_text('\n'.join(lines) + '\n'); paths[name] = p
    return dict(paths=paths, records=recs, idx=idx)

# ---------------------------------------------------------------------------------------------------------------
# load generation

def have_wrk() -> bool: return shutil.which('wrk') is not None

def _run_load(url, bodies, conc, duration, tag=''):
    if have_wrk():
        argv = pin('client') + ['wrk', f'-t{min(conc, 2)}', f'-c{conc}', f'-d{duration}s', '--timeout', '5s', '-s', str(LUA), url, '--', str(bodies)]
        marker = 'WRK_JSON '
    else:
        argv = pin('client') + [sys.executable, str(common.BENCH/'loadgen.py'), '--url', url, '--bodies', str(bodies), '-c', str(conc),
                '-d', str(duration), '--max-requests', str(int(20_000 * duration))]
        marker = 'LOADGEN_JSON '
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in r.stdout.splitlines() if l.startswith(marker)), None)
    if line is None: raise RuntimeError(f"load generator failed ({r.returncode}): {r.stdout[-500:]} {r.stderr[-500:]}")
    res = json.loads(line[len(marker):])
    res.setdefault('client', 'wrk')
    return res

def measure(url, bodies, conc, rows_per_req, duration, warmup, procs=(), worker=None):
    "Warm-up (discarded), then a measured window; returns rates, latency percentiles (ms), statuses, server CPU."
    if warmup: _run_load(url, bodies, conc, warmup)
    cpu0, w0 = _cpu(procs), _cpu([worker] if worker else [])
    raw = _run_load(url, bodies, conc, duration)
    cpu1, w1 = _cpu(procs), _cpu([worker] if worker else [])
    dur = raw['duration_us'] / 1e6
    ok = int(raw['statuses'].get('200', 0))
    n = raw['requests']
    lat = {k: round(v / 1000, 2) for k, v in raw['latency_us'].items() if k != 'stdev'}
    out = dict(concurrency=conc, rows_per_request=rows_per_req, seconds=round(dur, 2), requests=n, ok=ok,
               statuses=raw['statuses'], socket_errors={k: v for k, v in raw['errors'].items() if k != 'status' and v},
               req_per_s=round(n / dur, 1), ok_req_per_s=round(ok / dur, 1), ok_rows_per_s=round(ok * rows_per_req / dur, 1),
               ok_share=round(ok / n, 4) if n else 0.0, latency_ms=lat, client=raw.get('client'))
    if procs and cpu1 is not None:
        cpu = cpu1 - cpu0
        out['server_cpu_s'] = round(cpu, 2)
        out['server_cpu_util'] = round(cpu / dur, 3)            # 1.0 = one core busy
        out['server_cpu_ms_per_request'] = round(1000 * cpu / n, 3) if n else None
    if worker and w1 is not None and n:
        out['worker_cpu_ms_per_request'] = round(1000 * (w1 - w0) / n, 3)
        out['worker_cpu_ms_per_ok_request'] = round(1000 * (w1 - w0) / ok, 3) if ok else None
    return out

def _cpu(procs):
    import psutil
    tot = 0.0
    for pid in procs:
        try: t = psutil.Process(pid).cpu_times(); tot += t.user + t.system
        except psutil.Error: return None
    return tot

# ---------------------------------------------------------------------------------------------------------------
# servers

class Server:
    """kind: 'mlkit' (`mlkit serve`, the production alias or `model`), 'minimal' (minimal_app.py, pandas path),
    'minimal_records' (its predict_records path) or 'vanilla' (vanilla_bento.py: plain BentoML); `workers` processes."""
    def __init__(self, kind, model_dir=None, env=None, workers=1, model=None):
        self.kind, self.model_dir, self.proc, self.port, self.env = kind, model_dir, None, None, dict(env or {})
        self.workers, self.model = workers, model
    def start(self, timeout=180):
        self.port = common.free_port()
        if self.kind == 'mlkit': argv = pin('server') + [str(common.VENV_BIN/'mlkit'), 'serve', '--port', str(self.port), '--workers', str(self.workers)] + (['--model', self.model] if self.model else [])
        elif self.kind == 'vanilla':
            argv = pin('server') + [str(common.VENV_BIN/'bentoml'), 'serve', 'vanilla_bento:Vanilla', '--working-dir', str(common.BENCH), '--host', '127.0.0.1', '--port', str(self.port)]
            self.env.update(VANILLA_MODEL=str(self.model_dir), VANILLA_WORKERS=str(self.workers))
        else: argv = pin('server') + [sys.executable, str(common.BENCH/'minimal_app.py'), '--model', str(self.model_dir), '--port', str(self.port),
                                      '--path', 'records' if self.kind == 'minimal_records' else 'pandas', '--workers', str(self.workers)]
        self.log = open(TMP/f'{self.kind}-{self.port}.log', 'w')
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True)
        self.ready_s = common.wait_http(f'{self.base}/readyz', timeout, self.proc)
        if self.ready_s is None:
            self.stop(); raise RuntimeError(f"{self.kind} server did not become ready; log: {Path(self.log.name).read_text()[-1500:]}")
        self.ready_s = round(time.perf_counter() - t0, 3)
        self.worker = self._worker()
        return self
    @property
    def base(self): return f'http://127.0.0.1:{self.port}'
    @property
    def url(self): return f'{self.base}/predict'
    def _worker(self) -> int:
        import psutil
        if self.kind not in ('mlkit', 'vanilla'): return self.proc.pid
        deadline = time.time() + 20
        while time.time() < deadline:
            for c in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    if any('_bentoml_impl.worker' in a for a in c.cmdline()): return c.pid
                except psutil.Error: pass
            time.sleep(0.2)
        raise RuntimeError('BentoML worker process not found')
    def pids(self) -> list:
        import psutil
        try: return [self.proc.pid] + [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error: return [self.proc.pid]
    def stop(self):
        common.stop(self.proc)
        if getattr(self, 'log', None): self.log.close()

def check(server: Server, bodies: dict) -> dict:
    "One single-row and one 100-row request: status and number of predictions (the load must measure real answers)."
    import urllib.request
    out = {}
    for name in ('single', 'batch100'):
        body = bodies['paths'][name].read_text().splitlines()[0].encode()
        req = urllib.request.Request(server.url, data=body, headers={'content-type': 'application/json'}, method='POST')
        with urllib.request.urlopen(req, timeout=30) as r:
            ans = json.loads(r.read()); status = r.status
        n_in = len(json.loads(body)['rows'])
        out[name] = dict(status=status, rows=n_in, predictions=len(ans['predictions']), first=ans['predictions'][0])
        if status != 200 or len(ans['predictions']) != n_in: raise RuntimeError(f"{server.kind}: bad answer {out[name]}")
    return out

# ---------------------------------------------------------------------------------------------------------------
# in-process ceiling and the cost of each step of the request path

def rate(fn, seconds=1.0, repeats=5):
    "Calls per second of `fn` (a repeat runs for `seconds`): stats over repeats."
    fn()
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn(); n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds: break
        rates.append(n / dt)
    return common.stats(rates, 1)

def in_process(model_folder: Path, recs: list, idx) -> dict:
    import torch, pydantic
    torch.set_num_threads(1)
    from mlkit.model import Predictor
    from mlkit.data import Schema
    from mlkit.serving import Scorer, record_model, request_model
    from mlkit.predlog import PredictionLog
    pred = Predictor.load(model_folder)
    schema = Schema.load(model_folder/'schema.json')
    cols = list(schema.columns)
    r1 = [recs[idx[0]]]; r100 = [recs[i] for i in idx[:100]]
    df1, df100 = pd.DataFrame.from_records(r1, columns=cols), pd.DataFrame.from_records(r100, columns=cols)
    res = dict(torch_threads=torch.get_num_threads())
    res['predict_1row_per_s'] = rate(lambda: pred.predict(df1))
    res['predict_100rows_per_s'] = rate(lambda: pred.predict(df100))
    res['predict_100rows_rows_per_s'] = common.stats([v * 100 for v in res['predict_100rows_per_s']['values']], 1)
    has_records = hasattr(pred, 'predict_records')
    if has_records:    # the service's path (Scorer.score uses it when present)
        res['predict_records_1row_per_s'] = rate(lambda: pred.predict_records(r1))
        res['predict_records_100rows_per_s'] = rate(lambda: pred.predict_records(r100))
        res['predict_records_100rows_rows_per_s'] = common.stats([v * 100 for v in res['predict_records_100rows_per_s']['values']], 1)
    # the steps of one request, alone (microseconds per call, median of repeats)
    inputs = pred.transform.inputs
    Request = request_model(record_model(schema, inputs), 1000, base=pydantic.BaseModel)
    try:
        from mlkit.serving import request_adapter
        adapter = request_adapter(schema, inputs, 1000)
    except ImportError: adapter = None
    scorer = Scorer.__new__(Scorer)       # the service's scorer without the registry round trip
    scorer.tag, scorer.predictor, scorer.schema, scorer.inputs, scorer.metrics = 'bench', pred, schema, inputs, None
    scorer.log = PredictionLog(TMP/'predlog')
    arrays1, arrays100 = pred.transform.transform(df1), pred.transform.transform(df100)
    steps = {}
    for n, rs, df, arr in ((1, r1, df1, arrays1), (100, r100, df100, arrays100)):
        body = json.dumps(dict(rows=rs)).encode()
        parsed = Request.model_validate_json(body)
        dumped = [r.model_dump(by_alias=True) for r in parsed.rows]
        preds = scorer.score(dumped)
        answer = dict(model='bench', request_id='x' * 32, predictions=preds)
        fns = {
            'json.loads(body)': lambda: json.loads(body),
            'pydantic validate (model_validate_json)': lambda: Request.model_validate_json(body),
            **({'fast path validation (TypeAdapter into dicts)': lambda: adapter.validate_json(body)} if adapter else {}),
            'pydantic model_dump of rows': lambda: [r.model_dump(by_alias=True) for r in parsed.rows],
            'DataFrame.from_records': lambda: pd.DataFrame.from_records(dumped, columns=cols),
            'FeatureTransform.transform': lambda: pred.transform.transform(df, stats=True),
            'torch forward (Predictor.raw)': lambda: pred.raw(arr),
            'Predictor.predict (transform+torch+decode)': lambda: pred.predict(df),
            **({'FeatureTransform.transform_records': lambda: pred.transform.transform_records(dumped, stats=True),
                'Predictor.predict_records (no pandas)': lambda: pred.predict_records(dumped)} if has_records else {}),
            'Scorer.score (the service path)': lambda: scorer.score(dumped),
            'PredictionLog append (log_rows)': lambda: scorer.log_rows('r' * 32, dumped, preds),
            'json.dumps(answer)': lambda: json.dumps(answer),
        }
        steps[f'{n}_rows'] = {}
        for k, f in fns.items():
            try: steps[f'{n}_rows'][k] = round(1e6 / rate(f, 0.4, 3)['median'], 1)
            except Exception as e: steps.setdefault('errors', {})[f'{n} rows: {k}'] = f'{type(e).__name__}: {e}'[:200]
    try:   # the Prometheus observation needs BentoML's metrics; measured with prometheus_client directly
        import prometheus_client as pc
        reg = pc.CollectorRegistry()
        c = pc.Counter('x_predictions', 'x', ['model', 'label'], registry=reg)
        h = pc.Histogram('x_score', 'x', ['model'], buckets=[i / 10 for i in range(1, 11)], registry=reg)
        def observe(preds):
            for p in preds: h.labels(model='bench').observe(p['score'])
            c.labels(model='bench', label='x').inc(len(preds))
        for n, rs in ((1, r1), (100, r100)):
            preds = scorer.score([dict(r) for r in rs])
            steps[f'{n}_rows']['Prometheus observe (approx.)'] = round(1e6 / rate(lambda: observe(preds), 0.4, 3)['median'], 1)
    except Exception as e: steps['prometheus_error'] = str(e)
    scorer.log.close()
    res['steps_us'] = steps
    return res

# ---------------------------------------------------------------------------------------------------------------
# profile: py-spy on the BentoML worker, folded stacks attributed to the stages of a request

# (stage, test on one frame 'function (file:line)'). The first N_OUTER stages claim a sample when any frame of its stack
# matches (everything below them belongs to them); otherwise the innermost frame that matches decides, so a json call
# inside pydantic counts as JSON, pandas work inside the transform as the transform.
N_OUTER = 4
# py-spy shortens paths to the package's own folders: these are opentelemetry's (asgi instrumentation, sdk, api, util)
OTEL_PATHS = ('(asgi/__init__.py', '(trace/', '(context/', '(attributes/', '(_semconv.py', '(_decorator.py', '(propagators/',
              '(baggage/', '(http/__init__.py', '(sdk/', '(instrumentation/')
STAGES = [
    # outer: claim everything below them
    ('BentoML: JSON schema rebuilt for every response (IOMixin.mime_type)', lambda f: 'IOMixin.mime_type' in f or 'model_json_schema' in f),
    ('prediction log compression (background thread)', lambda f: 'compress_rotated' in f or '_maintain_quietly' in f or '(gzip.py' in f),
    ('prediction log write (incl. its JSON)', lambda f: 'PredictionLog' in f or 'log_rows' in f or 'log_batch' in f or '(mlkit/predlog.py' in f),
    ('mlkit metrics observe (Prometheus)', lambda f: 'ServiceMetrics.observe' in f),
    # innermost match
    ('logging (access log, error tracebacks)', lambda f: '(logging/' in f or '(traceback.py' in f or '(linecache' in f
        or 'http/access.py' in f or 'bentoml/_internal/log.py' in f),
    ('JSON encode/decode (request, response)', lambda f: '(json/' in f or 'orjson' in f or 'ujson' in f),
    ('torch forward', lambda f: 'Predictor.raw' in f),
    ('feature transform', lambda f: 'FeatureTransform.transform' in f),
    ('DataFrame construction', lambda f: 'from_records' in f or 'DataFrame.__init__' in f),
    ("Prometheus (BentoML's request metrics)", lambda f: 'prometheus_client' in f or 'metrics_middleware' in f.lower() or 'instruments.py' in f
        or 'BatchedTrafficMetrics' in f or '_flush_traffic' in f),
    ('Scorer.score (labels, result dicts)', lambda f: 'Scorer.score' in f or 'Predictor.predict' in f or _mine(f, 'score')),
    ('pydantic validation / model_dump', lambda f: 'pydantic' in f or 'model_dump' in f),
    ('OpenTelemetry tracing', lambda f: 'opentelemetry' in f.lower() or any(x in f for x in OTEL_PATHS) or 'Untraced' in f),
    ('503 shedding (exception path)', lambda f: 'ServiceUnavailable' in f or 'fallback' in f),
    ('batching (TickBatcher)', lambda f: 'TickBatcher' in f or _mine(f, '_flush', '_take', '_score_all', '_score')),
    ('mlkit fast path (request id, answer JSON)', lambda f: 'MlkitService.handle' in f or 'MlkitService._predict' in f
        or _mine(f, 'handle', 'predict', '_predict_ab', '_arms', '_invalid', '_shadow')),
    ('GuardMiddleware (body read, JSON check)', lambda f: 'GuardMiddleware' in f or _mine(f, '__call__', '_body', '_refusal', '_forward')),
    ('BentoML request/response IO (parse, serialize)', lambda f: 'io_models.py' in f or 'serde' in f),
    ('BentoML endpoint, context and middlewares', lambda f: '_bentoml_impl' in f or '_bentoml_sdk' in f or 'bentoml/' in f or 'simple_di' in f
        or 'SweptTimeout' in f or _mine(f, '_sweep')),
    ('Starlette / uvicorn HTTP', lambda f: 'starlette/' in f or 'uvicorn/' in f or 'httptools' in f or 'h11' in f or 'anyio' in f
        or '_HeldHead' in f or 'coalesce_response_writes' in f),
    ('asyncio event loop', lambda f: 'asyncio/' in f or 'uvloop' in f),
]

def _mine(frame: str, *names) -> bool:
    "True when `frame` is one of mlkit's serving functions `names` (methods added with @patch show their bare name)."
    return '(mlkit/serving.py' in frame and frame.startswith(tuple(f'{n} (' for n in names))

def attribute(folded: Path) -> dict:
    stages, leaf, incl, threads, total = Counter(), Counter(), Counter(), Counter(), 0
    by_stage = defaultdict(Counter)     # the frames that decided each stage
    for line in folded.read_text().splitlines():
        if not line.strip(): continue
        stack, n = line.rsplit(' ', 1); n = int(n); frames = stack.split(';')
        total += n
        if frames and frames[0].startswith(('thread (', 'process ')): threads[frames[0]] += n; frames = frames[1:]
        stage, frame = 'other', frames[-1] if frames else '?'
        if len(frames) >= 2 and frames[-2].startswith('Runner.run ('):
            # only the request's root coroutine (the outermost ASGI app, at its first line) is on the stack: the event loop
            # is stepping the task (C code), not that app's own work
            stage = 'asyncio event loop'
        for name, test in ([] if stage != 'other' else STAGES[:N_OUTER]):
            hit = next((f for f in frames if test(f)), None)
            if hit: stage, frame = name, hit; break
        if stage == 'other':
            for f in reversed(frames):
                hit = next((name for name, test in STAGES[N_OUTER:] if test(f)), None)
                if hit: stage, frame = hit, f; break
        stages[stage] += n
        by_stage[stage][_short(frame)] += n
        leaf[_short(frames[-1]) if frames else '?'] += n
        for f in set(_short(f) for f in frames): incl[f] += n
    pct = lambda c: {k: round(100 * v / total, 1) for k, v in c.most_common()} if total else {}
    interesting = ('Scorer.score', 'Predictor.raw', 'FeatureTransform.transform', 'from_records', 'model_dump', 'log_rows', 'log_batch', 'handle (',
                   'Session.run', '_flush', 'SweptTimeout', 'BatchedTrafficMetrics', '_HeldHead', 'compress_rotated',
                   'ServiceMetrics.observe', 'GuardMiddleware.__call__', 'TickBatcher', 'MlkitService.handle', 'validate_json', 'OpenTelemetryMiddleware', 'Logger.',
                   'predict (', 'model_validate', 'infer (')
    top = {k: {f: round(100 * v / total, 1) for f, v in by_stage[k].most_common(4)} for k in stages}
    return dict(samples=total, stages_pct=pct(stages), stage_top_frames_pct=top, top_self_pct=dict(list(pct(leaf).items())[:25]),
                inclusive_pct={k: v for k, v in pct(incl).items() if any(s in k for s in interesting)},
                threads=dict(threads.most_common()))

def _short(frame: str) -> str:
    m = re.match(r'(.*) \((.*?):(\d+)\)$', frame)
    if not m: return frame
    fn, path = m.group(1), m.group(2)
    parts = path.split('/')
    return f"{fn} ({'/'.join(parts[-2:])})"

def profile(model_folder, bodies, conc, seconds, warmup, pyspy, name='serving_profile', svg_seconds=5, body='single') -> dict:
    srv = Server('mlkit').start()
    out = dict(concurrency=conc, body=body, seconds=seconds, worker_pid=srv.worker)
    try:
        check(srv, bodies)
        total = warmup + seconds + svg_seconds + 6
        load = subprocess.Popen(pin('client') + ['wrk', f'-t{min(conc, 2)}', f'-c{conc}', f'-d{total}s', '--timeout', '5s', '-s', str(LUA), srv.url,
                                 '--', str(bodies['paths'][body])] if have_wrk() else
                                pin('client') + [sys.executable, str(common.BENCH/'loadgen.py'), '--url', srv.url, '--bodies', str(bodies['paths'][body]),
                                 '-c', str(conc), '-d', str(total), '--max-requests', str(20_000 * total)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(warmup)
        raw, svg = common.OUT/f'{name}.txt', common.OUT/f'{name}.svg'
        common.OUT.mkdir(parents=True, exist_ok=True); common.KEEP.mkdir(parents=True, exist_ok=True)
        base = [pyspy, 'record', '--pid', str(srv.worker), '-r', '200']
        cpu0 = _cpu([srv.worker])
        r1 = subprocess.run(base + ['-d', str(seconds), '--format', 'raw', '-o', str(raw)], capture_output=True, text=True, timeout=seconds + 60)
        cpu1 = _cpu([srv.worker])
        r2 = subprocess.run(base + ['-d', str(svg_seconds), '--format', 'flamegraph', '-o', str(svg)], capture_output=True, text=True, timeout=svg_seconds + 60)
        if cpu0 is not None and cpu1 is not None: out['worker_cpu_util_while_sampled'] = round((cpu1 - cpu0) / seconds, 3)
        stdout, _ = load.communicate(timeout=total + 60)
        line = next((l for l in stdout.splitlines() if l.startswith(('WRK_JSON ', 'LOADGEN_JSON '))), None)
        if line:
            w = json.loads(line.split(' ', 1)[1]); d = w['duration_us'] / 1e6
            out['load_during_profile'] = dict(req_per_s=round(w['requests'] / d, 1), ok_req_per_s=round(int(w['statuses'].get('200', 0)) / d, 1),
                                              statuses=w['statuses'], note='py-spy pauses the process to sample: rates under profiling are lower')
        if r1.returncode or not raw.exists():
            out['error'] = (r1.stderr or r1.stdout)[-500:]; return out
        out['attribution'] = attribute(raw)
        out['files'] = dict(raw=str(raw), svg=str(svg) if svg.exists() and not r2.returncode else None)
        if svg.exists(): shutil.copy2(svg, common.KEEP/svg.name)     # the raw stacks (large) stay in reports/bench/
    finally:
        srv.stop()
    return out

def ensure_pyspy():
    exe = common.VENV_BIN/'py-spy'
    if exe.exists(): return str(exe)
    if shutil.which('py-spy'): return shutil.which('py-spy')
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'py-spy'], capture_output=True, text=True, timeout=300)
    return str(exe) if exe.exists() else None

# ---------------------------------------------------------------------------------------------------------------

MINIMAL_RECORDS_SCENARIOS = ('single_c1', 'single_c64', 'batch100_c8')
# py-spy profiles: key -> (bodies, concurrency, the load run they belong to, file name under reports/bench/)
PROFILES = {'c64': ('single', 64, 'single_c64', 'serving_profile'), 'c8': ('single', 8, 'single_c8', 'serving_profile_c8'),
            'batch100_c8': ('batch100', 8, 'batch100_c8', 'serving_profile_batch100')}
SCENARIOS = [('single_c1', 'single', 1, 1), ('single_c8', 'single', 8, 1), ('single_c64', 'single', 64, 1), ('batch100_c8', 'batch100', 8, 100)]
SCENARIOS_MACHINE = [('single_c64', 'single', 64, 1), ('batch100_c8', 'batch100', 8, 100), ('single_c1', 'single', 1, 1)]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--duration', type=int, default=10); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--profiles', nargs='+', choices=list(PROFILES), default=list(PROFILES), help='py-spy profiles to take (load scenarios)')
    ap.add_argument('--profile-seconds', type=int, default=10)
    ap.add_argument('--skip-profile', action='store_true'); ap.add_argument('--only', nargs='*', help='scenario names')
    ap.add_argument('--no-pin', action='store_true', help='do not pin the load generator and the servers to separate cores')
    ap.add_argument('--skip-machine', action='store_true', help='skip the whole-machine runs (2 workers, unpinned)')
    ap.add_argument('--no-int8', action='store_true', help='skip the int8 derived model in the whole-machine runs')
    a = ap.parse_args()
    n = os.cpu_count() or 1
    if not a.no_pin and n >= 2 and shutil.which('taskset'):
        PIN.update(client=str(n - 1), server='0' if n == 2 else f'0-{n - 2}')
    from mlkit.data import load_adult, ADULT_TARGET
    print('training and registering a small model ...', flush=True)
    tag, folder = common.make_model()
    int8 = None
    if not a.no_int8:     # the int8 derived model (`mlkit optimize --int8`): registered only when it passes parity
        from mlkit.optimize import derive
        try: int8 = derive(tag, int8=True)['tag']
        except Exception as e: print(f'no int8 model: {e}', flush=True)
    _, test = load_adult()
    bodies = write_bodies(test, ADULT_TARGET)
    res = dict(model=tag, int8_model=int8, load_generator='wrk ' + subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split('\n')[0].strip()
               if have_wrk() else 'bench/loadgen.py (python httpx; wrk unavailable)',
               params=dict(duration_s=a.duration, warmup_s=a.warmup, torch_threads_server=int(os.environ.get('MLKIT_TORCH_THREADS', '1')),
                           mlkit_max_batch_size=int(os.environ.get('MLKIT_MAX_BATCH_SIZE', 512)),

                           cpu_pinning=dict(PIN) if PIN['client'] else None))
    print('in-process ceiling ...', flush=True)
    res['in_process'] = in_process(Path(folder), bodies['records'], bodies['idx'])
    print(json.dumps({k: v for k, v in res['in_process'].items() if k != 'steps_us'}, default=str)[:600], flush=True)
    runs = dict(mlkit={}, minimal={})
    minimal = Server('minimal', folder).start()
    res['minimal_ready_s'] = minimal.ready_s
    res['checks'] = dict(minimal=check(minimal, bodies))
    from mlkit.model import Predictor
    mrec = None
    if hasattr(Predictor, 'predict_records'):    # the service's own model path without pandas: isolates the framework
        runs['minimal_records'] = {}
        mrec = Server('minimal_records', folder).start(); res['checks']['minimal_records'] = check(mrec, bodies)
    try:
        for name, body, conc, rows in SCENARIOS:
            if a.only and name not in a.only: continue
            runs['minimal'][name] = measure(minimal.url, bodies['paths'][body], conc, rows, a.duration, a.warmup, [minimal.proc.pid], minimal.proc.pid)
            _print('minimal', name, runs['minimal'][name])
            if mrec and name in MINIMAL_RECORDS_SCENARIOS:
                runs['minimal_records'][name] = measure(mrec.url, bodies['paths'][body], conc, rows, a.duration, a.warmup, [mrec.proc.pid], mrec.proc.pid)
                _print('min.rec', name, runs['minimal_records'][name])
            srv = Server('mlkit').start()
            try:
                res['checks'].setdefault('mlkit', check(srv, bodies))
                runs['mlkit'][name] = m = measure(srv.url, bodies['paths'][body], conc, rows, a.duration, a.warmup, srv.pids(), srv.worker)
                m['server_ready_s'] = srv.ready_s
                _print('mlkit', name, m)
                if name == 'single_c64':   # the batcher's learned state after overload: c=1 on the same server
                    runs['mlkit']['single_c1_after_c64'] = m2 = measure(srv.url, bodies['paths']['single'], 1, 1, max(a.duration // 2, 3), 0, srv.pids(), srv.worker)
                    _print('mlkit', 'single_c1_after_c64', m2)
            finally: srv.stop()
        # the whole machine, as a user runs it on this box: every server with 2 worker processes, nothing pinned, the load
        # generator sharing the 2 cores; per scenario, side by side in this run and each freshly started: mlkit (and its
        # int8 derived model when one passed parity), plain BentoML (vanilla_bento.py) and the hand-written Starlette app on
        # the same records path as mlkit
        if not a.skip_machine and (os.cpu_count() or 1) >= 2:
            PINNING['on'] = False
            machine = [('mlkit_w2', dict(kind='mlkit'))] + ([('mlkit_w2_int8', dict(kind='mlkit', model=int8))] if int8 else []) + \
                      [('vanilla_w2', dict(kind='vanilla', model_dir=folder)), ('minimal_records_w2', dict(kind='minimal_records', model_dir=folder))]
            try:
                for name, body, conc, rows in SCENARIOS_MACHINE:
                    if a.only and name not in a.only: continue
                    for target, kw in machine:
                        srv = Server(workers=2, **kw).start()
                        try:
                            res['checks'].setdefault(target, check(srv, bodies))
                            runs.setdefault(target, {})[name] = m = measure(srv.url, bodies['paths'][body], conc, rows, a.duration, a.warmup, srv.pids(), None)
                            m['server_ready_s'], m['workers'] = srv.ready_s, 2
                            _print(target, name, m)
                        finally: srv.stop()
            finally: PINNING['on'] = True
    finally:
        minimal.stop()
        if mrec: mrec.stop()
    res['runs'] = runs
    res['profiles'] = {}
    if not a.skip_profile:
        pyspy = ensure_pyspy()
        for key in a.profiles:
            body, c, run, fname = PROFILES[key]
            if not pyspy: res['profiles'][key] = dict(error='py-spy unavailable'); continue
            print(f'profiling the BentoML worker under {body} load at concurrency {c} ...', flush=True)
            pr = res['profiles'][key] = profile(folder, bodies, c, a.profile_seconds, a.warmup + 1, pyspy, fname, body=body)
            pr['run'] = run
            print(json.dumps(pr.get('load_during_profile')), json.dumps(pr.get('attribution', pr).get('stages_pct', pr), default=str)[:1500], flush=True)
    res.update(summarize(res))
    common.write_result('serving', res)

def _print(target, name, m):
    print(f"{target:8s} {name:20s} {m['req_per_s']:8.1f} req/s  2xx {m['ok_req_per_s']:8.1f}/s ({m['ok_share']:.1%})  rows/s {m['ok_rows_per_s']:9.1f}  "
          f"p50 {m['latency_ms']['p50']:7.1f} p95 {m['latency_ms']['p95']:7.1f} p99 {m['latency_ms']['p99']:7.1f} ms  "
          f"cpu {m.get('server_cpu_ms_per_request')} ms/req", flush=True)

def summarize(res) -> dict:
    R, ip = res['runs'], res['in_process']
    table = [dict(metric='in-process Predictor.predict, 1-row frame', value=f"{common.spread(ip['predict_1row_per_s'], '{:,.0f}')} calls/s"),
             dict(metric='in-process Predictor.predict, 100-row frame', value=f"{common.spread(ip['predict_100rows_rows_per_s'], '{:,.0f}')} rows/s")]
    if ip.get('predict_records_1row_per_s'):
        table += [dict(metric='in-process Predictor.predict_records (the service path), 1 record', value=f"{common.spread(ip['predict_records_1row_per_s'], '{:,.0f}')} calls/s"),
                  dict(metric='in-process Predictor.predict_records, 100 records', value=f"{common.spread(ip['predict_records_100rows_rows_per_s'], '{:,.0f}')} rows/s")]
    # the goals are for this machine: judged on the whole-machine runs (2 workers, unpinned) when they exist
    goal_tgt = 'mlkit_w2' if R.get('mlkit_w2') else 'mlkit'
    labels = {'mlkit': 'mlkit, 1 worker on core 0', 'minimal': 'minimal app (pandas), core 0', 'minimal_records': 'minimal app (records), core 0',
              'mlkit_w2': 'mlkit, 2 workers, whole machine', 'mlkit_w2_int8': 'mlkit serving the int8 derived model, 2 workers, whole machine',
              'vanilla_w2': 'vanilla BentoML (pandas + torch), 2 workers, whole machine',
              'minimal_records_w2': 'Starlette/uvicorn app (records path), 2 workers, whole machine'}
    for name, *_ in SCENARIOS + [('single_c1_after_c64',)]:
        for tgt in labels:
            m = R.get(tgt, {}).get(name)
            if not m: continue
            rate = f"{m['ok_rows_per_s']:,.0f} rows/s" if m['rows_per_request'] > 1 else f"{m['ok_req_per_s']:,.0f} req/s"
            val = (f"{rate} ok ({m['ok_share']:.0%} 2xx of {m['req_per_s']:,.0f} req/s); p50/p95/p99 "
                   f"{m['latency_ms']['p50']:.1f}/{m['latency_ms']['p95']:.1f}/{m['latency_ms']['p99']:.1f} ms; "
                   f"server CPU {m.get('server_cpu_ms_per_request')} ms/req")
            row = dict(metric=f"{labels[tgt]}: {name}", value=val)
            if tgt == goal_tgt and name == 'single_c64':
                row['goal'] = '>= 10,000 req/s, p99 <= 10 ms'
                row['met'] = m['ok_req_per_s'] >= 10_000 and m['latency_ms']['p99'] <= 10
            if tgt == goal_tgt and name == 'batch100_c8':
                row['goal'] = '>= 250,000 rows/s'; row['met'] = m['ok_rows_per_s'] >= 250_000
            table.append(row)
    ratios = {}
    for base in ('minimal', 'minimal_records'):
        if R.get('mlkit', {}).get('single_c64') and R.get(base, {}).get('single_c64'):
            ratios[base] = r = R['mlkit']['single_c64']['ok_req_per_s'] / max(R[base]['single_c64']['ok_req_per_s'], 1e-9)
            what = 'minimal app (pandas path, as specified)' if base == 'minimal' else 'minimal app on the same records path (framework only)'
            table.append(dict(metric=f'mlkit / {what}, single-row c64 (2xx rate)', value=f'{r:.1%}', goal='>= 45%', met=r >= 0.45))
    for key, prof in res.get('profiles', {}).items():
        pr = prof.get('attribution')
        if not pr: continue
        run = R.get('mlkit', {}).get(prof.get('run', f'single_{key}')) or {}
        ms = run.get('worker_cpu_ms_per_request')
        top = [(k, v) for k, v in pr['stages_pct'].items() if v >= 1.0][:9]
        share = prof.get('load_during_profile', {})
        table.append(dict(metric=f"profile {key} (py-spy, {pr['samples']} samples of the worker; "
                                 f"{share.get('ok_req_per_s', '?')} ok of {share.get('req_per_s', '?')} req/s while sampled): CPU by stage",
                          value='; '.join(f"{k} {v}%" + (f" (~{v * ms / 100:.2f} ms/req)" if ms else '') for k, v in top)))
    notes = []
    st = ip.get('steps_us', {})
    if st.get('1_rows'):
        table.append(dict(metric='single-row request steps alone (µs)', value='; '.join(f'{k} {v:,.0f}' for k, v in st['1_rows'].items())))
    notes.append('Rates count 2xx answers only; latency percentiles (wrk) cover every answer, 503s included. '
                 'mlkit is restarted per scenario; all servers run one torch thread per process; '
                 + (f"in the pinned runs the load generator runs on core {PIN['client']}, the servers on {PIN['server']}; " if PIN['client'] else '')
                 + "the whole-machine runs pin nothing: every server runs 2 worker processes (mlkit, vanilla BentoML, the Starlette app) "
                   "and wrk shares the 2 cores with them. "
                   "Goals are judged on the whole-machine runs.")
    notes.append("Comparing against the minimal app: it is one process with no validation, batching, log or metrics; on one core "
                 "(pinned) the comparison isolates the framework cost per request.")
    findings, suggestions = findings_of(res)
    notes += ['**Findings:** ' + ' '.join(findings)] if findings else []
    notes += ['**What the profiles point at next, largest measured share first:**'] + [f'{i}. {x}' for i, x in enumerate(suggestions, 1)] if suggestions else []
    return dict(mlkit_vs_minimal_single_c64=round(ratios['minimal'], 4) if 'minimal' in ratios else None,
                mlkit_vs_minimal_records_single_c64=round(ratios['minimal_records'], 4) if 'minimal_records' in ratios else None,
                goals=dict(single_c64_req_per_s=10_000, single_c64_p99_ms=10, vs_minimal=0.45, batch_rows_per_s=250_000),
                findings=findings, suggestions=suggestions, table=table, notes=notes)

def findings_of(res):
    "What dominates the time of a request, read from this run's numbers; suggestions for the conditions found."
    R, ip, P = res['runs'], res['in_process'], res.get('profiles', {})
    ml, mi, mr = R.get('mlkit', {}), R.get('minimal', {}), R.get('minimal_records', {})
    s1, s100 = ip.get('steps_us', {}).get('1_rows', {}), ip.get('steps_us', {}).get('100_rows', {})
    f, sug = [], []
    records = 'Predictor.predict_records (no pandas)' in s1
    if s1:
        score1, score100 = s1.get('Scorer.score (the service path)', 0), s100.get('Scorer.score (the service path)', 0)
        tf = s1.get('FeatureTransform.transform_records' if records else 'FeatureTransform.transform', 0)
        pyd = s1.get('fast path validation (TypeAdapter into dicts)') or (s1.get('pydantic validate (model_validate_json)', 0) + s1.get('pydantic model_dump of rows', 0))
        f.append(f"Measured alone, the service's model path (Scorer.score{', via predict_records' if records else ', via a DataFrame'}) costs "
                 f"{score1 / 1000:.2f} ms for one record and {score100 / 1000:.2f} ms for 100: transform {tf / 1000:.2f} ms, torch "
                 f"{s1.get('torch forward (Predictor.raw)', 0) / 1000:.2f} ms; validation {pyd:.0f} µs, prediction log "
                 f"{s1.get('PredictionLog append (log_rows)', 0):.0f} µs. The pandas path (DataFrame.from_records + FeatureTransform.transform) "
                 f"costs {(s1.get('DataFrame.from_records', 0) + s1.get('FeatureTransform.transform', 0)) / 1000:.2f} ms per call whatever the rows.")
    def stage_line(key):
        a = P.get(key, {}).get('attribution')
        if not a: return None
        ms = (ml.get(P[key].get('run', f'single_{key}')) or {}).get('worker_cpu_ms_per_request')
        parts = [f"{k} {v}%" + (f" (~{v * ms / 100:.2f} ms)" if ms else '') for k, v in a['stages_pct'].items() if v >= 2.0]
        what = '100-row' if P[key].get('body') == 'batch100' else 'single-row'
        return (f"Profile, {what} requests at concurrency {P[key].get('concurrency')} ({a['samples']} py-spy samples of the worker"
                + (f"; {ms:.2f} ms of worker CPU per request in the unprofiled run" if ms else '') + "): " + ', '.join(parts) + '.')
    for key in P:
        line = stage_line(key)
        if line: f.append(line)
    util = [m.get('server_cpu_util') for m in ml.values() if m.get('concurrency', 0) >= 8 and m.get('server_cpu_util')]
    if util and min(util) >= 0.85:
        f.append(f"Under load (concurrency >= 8) the single BentoML worker is CPU-bound: {min(util):.2f}-{max(util):.2f} cores busy.")
    st = [P.get(k, {}).get('attribution', {}).get('stages_pct', {}) for k in P]
    def top(k):   # the frames behind stage k, in the profile where it weighs most
        best = max(P.values(), key=lambda x: x.get('attribution', {}).get('stages_pct', {}).get(k, 0), default={})
        return best.get('attribution', {}).get('stage_top_frames_pct', {}).get(k, {})
    g = lambda *names: max([sum(x.get(n, 0) for n in names) for x in st] + [0])
    m64 = ml.get('single_c64')
    if m64 and m64['ok_share'] < 0.95:
        f.append(f"At concurrency 64 the service shed load: only {m64['ok_share']:.0%} of answers were 200 "
                 f"({m64['ok_req_per_s']:,.0f} ok of {m64['req_per_s']:,.0f} req/s).")
    after, c1 = ml.get('single_c1_after_c64'), ml.get('single_c1')
    sticky = bool(after and c1 and after['latency_ms']['p50'] > 2 * c1['latency_ms']['p50'])
    if sticky:
        f.append(f"The batcher keeps what it learned under load: on the same server right after the c64 run, requests at concurrency 1 "
                 f"took p50 {after['latency_ms']['p50']:.1f} ms ({after['ok_req_per_s']:.0f} req/s) instead of {c1['latency_ms']['p50']:.1f} ms "
                 f"({c1['ok_req_per_s']:.0f} req/s) on a fresh server, at {after.get('server_cpu_ms_per_request')} instead of "
                 f"{c1.get('server_cpu_ms_per_request')} ms of server CPU per request.")
    elif after and c1:
        f.append(f"No state kept from the burst: on the same server right after the c64 run, requests at concurrency 1 took p50 "
                 f"{after['latency_ms']['p50']:.1f} ms ({after['ok_req_per_s']:.0f} req/s; fresh server {c1['latency_ms']['p50']:.1f} ms).")
    w2 = R.get('mlkit_w2', {}).get('single_c64')
    if w2:
        others = [(what, R.get(k, {}).get('single_c64')) for k, what in (('vanilla_w2', 'vanilla BentoML'), ('minimal_records_w2', 'the Starlette app'),
                                                                         ('mlkit_w2_int8', 'mlkit with the int8 model'))]
        f.append(f"On the whole machine (2 workers each, wrk on the same 2 cores) mlkit serves {w2['ok_req_per_s']:,.0f} single-row req/s at c64 "
                 f"(p50/p99 {w2['latency_ms']['p50']:.1f}/{w2['latency_ms']['p99']:.1f} ms)"
                 + ''.join(f"; {what} {m['ok_req_per_s']:,.0f} (p99 {m['latency_ms']['p99']:,.1f} ms)" for what, m in others if m) + '.')
    for base, what in (('minimal', 'pandas path'), ('minimal_records', 'same records path')):
        if R.get(base, {}).get('single_c64') and m64:
            b = R[base]['single_c64']
            f.append(f"The minimal Starlette app ({what}, no batching) serves {b['ok_req_per_s']:,.0f} req/s at c64 "
                     f"(p99 {b['latency_ms']['p99']:,.0f} ms) against mlkit's {m64['ok_req_per_s']:,.0f} (p99 {m64['latency_ms']['p99']:,.0f} ms).")
    # suggestions: (stages whose share of worker CPU they address, the least share worth naming, text), sorted by share
    SUGGEST = [
        (('torch forward',), 15, "The model itself ({:.0f}% of worker CPU in torch): a smaller MLP or fewer piecewise-linear bins "
                                 "trade accuracy for rate; torch.compile or ONNX Runtime could cut the per-call overhead for small batches."),
        (('feature transform',), 10, "The transform ({:.0f}%): per-value Python in transform_records; vectorizing the categorical lookups "
                                     "(one np.fromiter per column) would cut it for large requests."),
        (("Prometheus (BentoML's request metrics)", 'OpenTelemetry tracing', 'BentoML endpoint, context and middlewares'), 10,
         "BentoML's outer middlewares ({:.0f}%: request metrics with multiprocess files, the OpenTelemetry "
         "check, timeouts) run on every request, fast path included; they feed the SLOs, so they stay."),
        (('Starlette / uvicorn HTTP', 'asyncio event loop'), 20, "HTTP parsing and the event loop ({:.0f}%) are paid once per request whatever "
                                                                 "its rows: clients that send rows in batches get many times the row rate (see batch100)."),
        (('prediction log write (incl. its JSON)',), 8, "The prediction log ({:.0f}%): one dict and one JSON line per row in the event loop; a "
                                                        "background writer thread would move it off the request path, at the price of the "
                                                        "flush-before-answer guarantee."),
        (('pydantic validation / model_dump',), 8, "Validation ({:.0f}%) is already one pass of pydantic-core into dicts; only fewer checks would cut it."),
    ]
    cands = [(g(*stages), text.format(g(*stages))) for stages, least, text in SUGGEST if g(*stages) >= least]
    sug = [t for _, t in sorted(cands, key=lambda x: -x[0])]
    return f, sug

if __name__ == '__main__':
    try: main()
    finally: common.cleanup(TMP)
