"""Shared helpers of the benchmarks: isolated state, machine facts, statistics, result files and the summary table.

Import this module *before* mlkit: `isolate()` points MLKIT_HOME, MLKIT_REPORTS and BENTOML_HOME at a temporary
folder and disables wandb, so a benchmark never touches the user's ~/.mlkit or the project's reports/runs/.
"""
from __future__ import annotations
import json, os, platform, shutil, socket, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = ROOT/'reports'/'bench'        # generated (ignored by git)
KEEP = BENCH/'results'              # a copy kept for comparison (committed)
VENV_BIN = Path(sys.executable).parent
LOAD_AT_START = os.getloadavg()     # taken at import, before the benchmark adds its own load

def isolate(prefix='mlkit-bench-') -> Path:
    "Point all mutable mlkit/BentoML/wandb state at a fresh temporary folder (inherited by child processes)."
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ['MLKIT_HOME'] = str(tmp/'home')
    os.environ['MLKIT_REPORTS'] = str(tmp/'reports')
    os.environ['BENTOML_HOME'] = str(tmp/'home'/'bentoml')
    os.environ['BENTOML_DO_NOT_TRACK'] = 'True'
    os.environ['WANDB_MODE'] = 'disabled'
    os.environ['WANDB_SILENT'] = 'true'
    os.environ.pop('MLKIT_SETTINGS', None)
    os.environ.pop('MLKIT_API_TOKEN', None)
    os.environ.pop('MLKIT_SIGNING_KEY', None)
    return tmp

def cleanup(tmp: Path):
    if os.environ.get('BENCH_KEEP_TMP') != '1': shutil.rmtree(tmp, ignore_errors=True)

def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown'

def machine() -> dict:
    "Facts about the machine and software a result was measured with."
    from importlib.metadata import version, PackageNotFoundError
    libs = {}
    for p in ('torch', 'lightning', 'numpy', 'pandas', 'pydantic', 'bentoml', 'starlette', 'uvicorn', 'papermill'):
        try: libs[p] = version(p)
        except PackageNotFoundError: pass
    try: mem = round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30, 1)
    except (ValueError, OSError): mem = None
    return dict(cores=os.cpu_count(), cpu_model=_cpu_model(), memory_gib=mem, platform=platform.platform(),
                python=platform.python_version(), libraries=libs,
                load_avg_1m_at_start=round(LOAD_AT_START[0], 2), load_avg_at_start=[round(x, 2) for x in LOAD_AT_START])

def stats(xs, ndigits=4) -> dict:
    "Median, min, max, IQR (q1, q3) and n of the repeats `xs`."
    xs = sorted(float(x) for x in xs)
    if not xs: return dict(n=0)
    q = statistics.quantiles(xs, n=4, method='inclusive') if len(xs) > 1 else [xs[0]] * 3
    r = lambda v: round(v, ndigits)
    return dict(median=r(statistics.median(xs)), min=r(xs[0]), max=r(xs[-1]), q1=r(q[0]), q3=r(q[2]), n=len(xs),
                values=[r(x) for x in xs])

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def now() -> str: return datetime.now(timezone.utc).isoformat(timespec='seconds')

def write_result(name: str, result: dict) -> Path:
    "Write `<name>.json` to reports/bench/ and bench/results/, then regenerate both README.md tables."
    result = dict(benchmark=name, finished_at=now(), **result)
    if 'machine' not in result: result['machine'] = machine()
    text = json.dumps(result, indent=1, default=str)
    for d in (OUT, KEEP):
        d.mkdir(parents=True, exist_ok=True)
        (d/f'{name}.json').write_text(text + '\n')
    write_tables()
    print(f"wrote {OUT/(name + '.json')} and {KEEP/(name + '.json')}", flush=True)
    return OUT/f'{name}.json'

# ---------------------------------------------------------------------------------------------------------------
# The Markdown summary: each result carries `table` rows {metric, value, goal, met}; goals are targets, not assertions.

def _fmt_met(m):
    return {True: 'yes', False: '**no**', None: '–'}.get(m, str(m))

def write_tables():
    "README.md tables from the latest result of each benchmark: reports/bench/ or the kept copy in bench/results/, the newer."
    latest = {}
    for p in sorted(KEEP.glob('*.json')) + sorted(OUT.glob('*.json')):
        try: r = json.loads(p.read_text())
        except (json.JSONDecodeError, OSError): continue
        if not isinstance(r, dict) or 'benchmark' not in r: continue      # e.g. sweep_adult_best.json
        if r['benchmark'] not in latest or str(r.get('finished_at', '')) >= str(latest[r['benchmark']].get('finished_at', '')):
            latest[r['benchmark']] = r
    results = list(latest.values())
    order = {'sweep': 0, 'training': 1, 'network_cost': 2, 'serving': 3, 'run_overhead': 4, 'startup': 5, 'corpus': 99}
    results.sort(key=lambda r: (order.get(r.get('benchmark'), 9), r.get('benchmark', '')))
    lines = ['# mlkit benchmarks', '',
             'Generated by `make bench` (bench/run_all.py); one JSON per benchmark beside this file holds every repeat. '
             'Goals are targets, never assertions. Medians of repeats, spread as [min–max].', '']
    for r in results:
        m = r.get('machine', {})
        lines += [f"## {r['benchmark']}", '',
                  f"{r.get('finished_at', '')} · {m.get('cores')} cores {m.get('cpu_model')} · python {m.get('python')} · "
                  f"torch {m.get('libraries', {}).get('torch')} · load avg (1 min) at start {m.get('load_avg_1m_at_start')}", '',
                  '| metric | value | goal | met |', '|---|---|---|---|']
        for row in r.get('table', []):
            lines.append(f"| {row['metric']} | {row['value']} | {row.get('goal') or ''} | {_fmt_met(row.get('met'))} |")
        notes = r.get('notes') or []
        for note in ([notes] if isinstance(notes, str) else notes): lines += ['', str(note)]
        lines.append('')
    text = '\n'.join(lines)
    for d in (OUT, KEEP):
        d.mkdir(parents=True, exist_ok=True)
        (d/'README.md').write_text(text)

def spread(s: dict, fmt='{:.3f}', unit='') -> str:
    "'median [min–max] unit' for a `stats` dict."
    if not s or not s.get('n'): return 'n/a'
    return f"{fmt.format(s['median'])}{unit} [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"

def wait_http(url: str, timeout: float, proc=None, interval=0.05):
    "Poll `url` until it answers 200; return seconds waited or None (timeout / process exited)."
    import urllib.request, urllib.error
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None: return None
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return time.perf_counter() - t0
        except (urllib.error.URLError, ConnectionError, OSError): pass
        time.sleep(interval)
    return None

def stop(proc, timeout=15):
    "Terminate a process we started (its whole process group when it leads one), then kill it if needed."
    if proc is None or proc.poll() is not None: return
    import signal
    try:
        if os.getpgid(proc.pid) == proc.pid: os.killpg(proc.pid, signal.SIGTERM)
        else: proc.terminate()
    except ProcessLookupError: return
    try: proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            if os.getpgid(proc.pid) == proc.pid: os.killpg(proc.pid, signal.SIGKILL)
            else: proc.kill()
        except ProcessLookupError: pass
        proc.wait(5)

def make_model(limit_rows=4000, max_epochs=2, name='bench', promote=True, seed=0) -> tuple:
    "Train a small model with the default architecture, register (and promote) it in the isolated store: (tag, folder)."
    from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
    from mlkit.train import TrainParams, fit
    from mlkit import registry
    train, _ = load_adult()
    schema = infer_schema(train, ADULT_TARGET, ADULT_SENSITIVE)
    res = fit(train, schema, TrainParams(limit_rows=limit_rows, max_epochs=max_epochs, seed=seed), progress=False, logger=False)
    folder = Path(os.environ['MLKIT_HOME'])/'staging'/name
    res.predictor.save(folder)
    schema.save(folder/'schema.json')
    # as `runs.register_run` does: a reference sample, and the parity-checked ONNX file serving scores with
    from mlkit.monitoring import reference_sample, REFERENCE
    from mlkit.optimize import attach_onnx
    reference_sample(train, 2000, seed).to_parquet(folder/REFERENCE, index=False)
    tag = registry.register(folder, name, dict(run_id='benchmark', params=res.params, onnx=attach_onnx(folder)))
    if promote: registry.promote(tag, reason='benchmark')
    return tag, registry.model_path(tag)
