"""Serving cost of the network, before / after: the previous default (an MLP) against the new default (TabM).

The cost of scoring does not depend on how long a network was trained, so each is trained for `--train-epochs` (1)
on the whole Adult training file (its feature transform then has the real bins and vocabularies), registered in a
temporary store (`common.isolate`, via bench_serving's import) and measured the same way:

1. In process, one torch thread (as the service runs), after `Predictor.optimize()` (the frozen TorchScript graph the
   service scores with): the latency of `Predictor.predict_records([row])` over `--calls` (3,000) single-row calls
   cycling through 500 test records, after 300 warm-up calls: median, p95, p99 in µs; and the 100-record throughput of
   `predict_records` (5 repeats of 1 s each, rows/s). The eager network (no `optimize()`) beside it, single row only.
2. Over HTTP, as bench_serving.py measures the service (its `Server`, `measure` and bodies; `wrk` with predict.lua, else
   bench/loadgen.py): `mlkit serve` restarted per scenario with 1 worker pinned to core 0 and the load generator on core 1:
   single-row /predict at concurrency 1 and 64, 100-row bodies at concurrency 8; then the whole machine (2 workers,
   nothing pinned) single-row at concurrency 64. 2 s warm-up, `--duration` (10) s measured. The two networks
   alternate scenario by scenario (the production alias is moved before each start), so drifting load hits both.

    .venv/bin/python bench/bench_network_cost.py [--calls 3000] [--duration 10] [--warmup 2] [--skip-http] [--train-epochs 1]
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import bench_serving as S          # isolates the state (MLKIT_HOME, MLKIT_REPORTS, BENTOML_HOME) in S.TMP on import
TMP = S.TMP

import numpy as np

PREVIOUS_DEFAULT = dict(network='mlp', lr=1e-3, weight_decay=1e-4, dropout=0.15, hidden='256,256', d_cat=16, d_num=16, n_bins=48)
NETS = {'mlp': ('previous default (MLP 256x256)', PREVIOUS_DEFAULT), 'tabm': ('new default (TabM k=16, 2x128)', {})}
HTTP_SCENARIOS = [('single_c1', 'single', 1, 1, 1), ('single_c64', 'single', 64, 1, 1), ('batch100_c8', 'batch100', 8, 100, 1),
                  ('single_c64_w2', 'single', 64, 1, 2)]     # (name, bodies, concurrency, rows per request, workers)

def train_register(key: str, extra: dict, epochs: int) -> tuple:
    from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
    from mlkit.train import TrainParams, fit
    from mlkit import registry
    train, _ = load_adult()
    schema = infer_schema(train, ADULT_TARGET, ADULT_SENSITIVE)
    t0 = time.perf_counter()
    res = fit(train, schema, TrainParams.make(**extra, max_epochs=epochs, patience=epochs), progress=False, logger=False)
    folder = Path(os.environ['MLKIT_HOME'])/'staging'/key
    res.predictor.save(folder); schema.save(folder/'schema.json')
    tag = registry.register(folder, f'cost-{key}', dict(run_id='benchmark', params=res.params))
    n_params = sum(p.numel() for p in res.predictor.net.parameters())
    return tag, registry.model_path(tag), dict(train_seconds=round(time.perf_counter() - t0, 1), epochs=res.epochs, n_params=n_params)

def latency_us(fn, args: list, calls: int, warmup: int = 300) -> dict:
    "Per-call latency of fn(args[i % len(args)]) in µs: median, p95, p99, mean over `calls` calls."
    for i in range(warmup): fn(args[i % len(args)])
    ts = np.empty(calls)
    pc = time.perf_counter_ns
    for i in range(calls):
        a = args[i % len(args)]
        t0 = pc(); fn(a); ts[i] = pc() - t0
    ts /= 1000
    return dict(median=round(float(np.median(ts)), 1), p95=round(float(np.percentile(ts, 95)), 1),
                p99=round(float(np.percentile(ts, 99)), 1), mean=round(float(ts.mean()), 1), n=calls)

def in_process(folder: Path, recs: list, idx, calls: int) -> dict:
    import torch, warnings
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)     # the trace of optimize(): shapes are fixed per call
    from mlkit.model import Predictor
    singles = [[recs[i]] for i in idx[:500]]
    hundred = [recs[i] for i in idx[:100]]
    eager = Predictor.load(folder)
    fast = Predictor.load(folder).optimize()
    out = dict(torch_threads=torch.get_num_threads(), load_1m_before=round(os.getloadavg()[0], 2))
    out['single_row_us'] = latency_us(fast.predict_records, singles, calls)
    out['single_row_eager_us'] = latency_us(eager.predict_records, singles, max(calls // 3, 1000))
    rates = S.rate(lambda: fast.predict_records(hundred), 1.0, 5)
    out['records100_rows_per_s'] = common.stats([v * 100 for v in rates['values']], 0)
    a1, a100 = fast.transform.transform_records(singles[0]), fast.transform.transform_records(hundred)
    out['torch_only_us'] = {'1_row': latency_us(lambda _: fast.raw(a1), [0], 2000, 200)['median'],
                            '100_rows': latency_us(lambda _: fast.raw(a100), [0], 500, 50)['median']}
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--calls', type=int, default=3000, help='single-row calls timed in process (>= 2,000)')
    ap.add_argument('--duration', type=int, default=10); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--train-epochs', type=int, default=1)
    ap.add_argument('--skip-http', action='store_true')
    ap.add_argument('--scenarios', nargs='+', choices=[x[0] for x in HTTP_SCENARIOS], help='HTTP scenarios to run (default: all)')
    ap.add_argument('--no-pin', action='store_true')
    a = ap.parse_args()
    t_start = time.perf_counter()
    n = os.cpu_count() or 1
    if not a.no_pin and n >= 2 and shutil.which('taskset'):
        S.PIN.update(client=str(n - 1), server='0' if n == 2 else f'0-{n - 2}')
    from mlkit import registry
    from mlkit.data import load_adult, ADULT_TARGET
    _, test = load_adult()
    bodies = S.write_bodies(test, ADULT_TARGET)
    res = dict(params=dict(calls=a.calls, duration_s=a.duration, warmup_s=a.warmup, train_epochs=a.train_epochs,
                           cpu_pinning=dict(S.PIN) if S.PIN['client'] else None,
                           load_generator=('wrk' if S.have_wrk() else 'bench/loadgen.py (python; wrk unavailable)')),
               networks={})
    models = {}
    for key, (label, extra) in NETS.items():
        print(f"{label}: training {a.train_epochs} epoch(s) on Adult and registering ...", flush=True)
        tag, folder, info = train_register(key, extra, a.train_epochs)
        models[key] = (tag, Path(folder))
        res['networks'][key] = dict(label=label, tag=tag, **info)
    for key, (tag, folder) in models.items():
        print(f"{NETS[key][0]}: in process ...", flush=True)
        ip = res['networks'][key]['in_process'] = in_process(folder, bodies['records'], bodies['idx'], a.calls)
        print(f"  single row {ip['single_row_us']} µs; eager {ip['single_row_eager_us']['median']} µs; "
              f"100 records {ip['records100_rows_per_s']['median']:,.0f} rows/s", flush=True)
    if not a.skip_http:
        for name, body, conc, rows, workers in HTTP_SCENARIOS:
            if a.scenarios and name not in a.scenarios: continue
            for key, (tag, folder) in models.items():
                registry.promote(tag, reason='benchmark')
                S.PINNING['on'] = workers == 1
                load = os.getloadavg()[0]
                srv = S.Server('mlkit', env=dict(MLKIT_WORKERS=str(workers))).start()
                try:
                    res['networks'][key].setdefault('checks', S.check(srv, bodies))
                    m = S.measure(srv.url, bodies['paths'][body], conc, rows, a.duration, a.warmup, srv.pids(), srv.worker if workers == 1 else None)
                    m.update(server_ready_s=srv.ready_s, workers=workers, pinned=workers == 1, load_1m_before=round(load, 2))
                    res['networks'][key].setdefault('http', {})[name] = m
                    S._print(key, name, m)
                finally:
                    srv.stop(); S.PINNING['on'] = True
    res['seconds'] = round(time.perf_counter() - t_start, 1)
    res.update(summarize(res))
    common.write_result('network_cost', res)

def summarize(res) -> dict:
    N = res['networks']; table = []
    for key, d in N.items():
        ip = d['in_process']; s = ip['single_row_us']
        table += [dict(metric=f"{d['label']}: parameters", value=f"{d['n_params']:,}"),
                  dict(metric=f"{d['label']}: in process, predict_records 1 row after optimize() (µs, {s['n']:,} calls)",
                       value=f"median {s['median']:,.0f}, p95 {s['p95']:,.0f}, p99 {s['p99']:,.0f} (eager: median {ip['single_row_eager_us']['median']:,.0f}; "
                             f"torch alone {ip['torch_only_us']['1_row']:,.0f})"),
                  dict(metric=f"{d['label']}: in process, predict_records 100 rows", value=f"{common.spread(ip['records100_rows_per_s'], '{:,.0f}')} rows/s "
                                                                                            f"(torch alone {ip['torch_only_us']['100_rows']:,.0f} µs per 100 rows)")]
    if len(N) == 2:
        mlp, tabm = N['mlp']['in_process'], N['tabm']['in_process']
        table += [dict(metric='TabM / MLP: single-row median latency in process', value=f"{tabm['single_row_us']['median'] / mlp['single_row_us']['median']:.2f}x"),
                  dict(metric='TabM / MLP: 100-row throughput in process', value=f"{tabm['records100_rows_per_s']['median'] / mlp['records100_rows_per_s']['median']:.2f}x")]
    labels = dict(single_c1='single row, c1, 1 worker (core 0)', single_c64='single row, c64, 1 worker (core 0)',
                  batch100_c8='100-row bodies, c8, 1 worker (core 0)', single_c64_w2='single row, c64, 2 workers, whole machine')
    for name in labels:
        for key, d in N.items():
            m = d.get('http', {}).get(name)
            if not m: continue
            rate = f"{m['ok_rows_per_s']:,.0f} rows/s" if m['rows_per_request'] > 1 else f"{m['ok_req_per_s']:,.0f} req/s"
            row = dict(metric=f"HTTP {labels[name]}: {d['label']}",
                       value=f"{rate} ok ({m['ok_share']:.0%} 2xx); p50/p95/p99 {m['latency_ms']['p50']:.1f}/{m['latency_ms']['p95']:.1f}/"
                             f"{m['latency_ms']['p99']:.1f} ms; server CPU {m.get('server_cpu_ms_per_request')} ms/req (load {m['load_1m_before']})")
            if name == 'single_c64_w2': row.update(goal='>= 2,500 req/s, p99 <= 30 ms', met=m['ok_req_per_s'] >= 2500 and m['latency_ms']['p99'] <= 30)
            table.append(row)
        ms = [N[k].get('http', {}).get(name) for k in ('mlp', 'tabm')]
        if all(ms):
            key_rate = 'ok_rows_per_s' if ms[0]['rows_per_request'] > 1 else 'ok_req_per_s'
            table.append(dict(metric=f"HTTP {labels[name]}: TabM / MLP rate", value=f"{ms[1][key_rate] / max(ms[0][key_rate], 1e-9):.2f}x"))
    table.append(dict(metric='this script: wall time', value=f"{res['seconds']:.0f} s"))
    notes = ["Both networks are trained briefly (scoring cost does not depend on training) on the whole Adult training file; "
             "in process: one torch thread, the service's `predict_records` path after `optimize()` (TorchScript), one row per call "
             "cycling through 500 test records. HTTP: as bench_serving.py (wrk + predict.lua), `mlkit serve` restarted per scenario, "
             "the two networks alternating scenario by scenario; single-worker runs pin the server to core 0 and the load generator "
             "to core 1, the 2-worker run pins nothing. Rates count 2xx answers only."]
    return dict(table=table, notes=notes)

if __name__ == '__main__':
    try: main()
    finally: common.cleanup(TMP)
