"""Scale: training time per epoch and peak memory at 100k, 1M and 10M rows of a generated 15-column table (like Adult).

Each measurement runs in its own process (`--worker`), which reports its epoch time and its own peak RSS
(`getrusage`: the most resident memory the process ever held). Modes: `memory` (the in-memory path, `train.fit`),
`stream` (the streaming path, `stream.fit_stream`), and `ddp` (streaming under torchrun with 2 gloo processes on
this machine; each rank reports its own peak). Goals (issue 17): time per epoch grows linearly with the rows;
peak RSS <= 2 GiB at 10M rows with one process; with 2 DDP processes, each process's peak no more than one
process's. Large tables train 1 epoch (the streaming default); the batch grows with the table (`stream_batch_size`).

    .venv/bin/python bench/bench_scale.py [--sizes 100000 1000000 10000000] [--modes memory stream ddp] [--ddp-sizes 1000000]

Writes reports/bench/scale.json and the README table. The generated tables go to a temporary folder and are deleted.
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

GIB = 2 ** 30
TARGET = 'income'
CATS = dict(workclass=8, education=16, marital_status=7, occupation=14, relationship=6, race=5, sex=2, native_country=41)

def generate(folder: Path, rows: int, seed: int = 0, file_rows: int = 1_000_000) -> Path:
    "An Adult-like table: 6 numeric and 8 categorical inputs and a binary target (15 columns), in Parquet files of `file_rows`."
    import numpy as np, pandas as pd
    folder.mkdir(parents=True, exist_ok=True)
    for j, start in enumerate(range(0, rows, file_rows)):
        n = min(file_rows, rows - start)
        rng = np.random.default_rng([seed, j])
        age = rng.integers(17, 91, n); edu = rng.integers(1, 17, n); hours = rng.integers(1, 100, n)
        gain = np.where(rng.random(n) < 0.92, 0, rng.lognormal(8, 1, n)).round(); loss = np.where(rng.random(n) < 0.95, 0, rng.normal(1900, 400, n)).round()
        df = pd.DataFrame(dict(age=age, fnlwgt=rng.integers(12_000, 1_500_000, n), education_num=edu, capital_gain=gain,
                               capital_loss=loss, hours_per_week=hours))
        for c, k in CATS.items():
            p = rng.dirichlet(np.ones(k) * 0.7)
            df[c] = pd.Categorical.from_codes(rng.choice(k, n, p=p), [f"{c}_{i}" for i in range(k)]).astype(str)
        z = 0.04 * (age - 40) + 0.3 * (edu - 10) + 0.03 * (hours - 40) + (gain > 0) * 1.5 + (df.sex == 'sex_0') * 0.5 - 1.2
        df[TARGET] = np.where(z + rng.logistic(size=n) > 0, '>50K', '<=50K')
        df.to_parquet(folder/f'part-{j:03d}.parquet', index=False, row_group_size=131_072)
    return folder

def worker(a) -> dict:
    "One measurement in this process: load, (fit the transform,) train 1 epoch; the epoch's seconds and this process's peak RSS."
    import lightning as L
    from mlkit.config import load_settings
    from mlkit.data import load_for_run, read_table, infer_schema
    from mlkit.train import TrainParams, fit
    from mlkit.stream import fit_stream
    times = {}
    class EpochTimer(L.Callback):
        def on_train_epoch_start(self, trainer, module): times['start'] = time.perf_counter()
        def on_train_epoch_end(self, trainer, module): times['epoch_s'] = time.perf_counter() - times['start']   # after validation
    world = int(os.environ.get('WORLD_SIZE', 1))
    ddp = dict(strategy='ddp', devices=world) if world > 1 else {}   # under torchrun: DDP over gloo (CPU), as mlkit.launch runs it
    p = TrainParams(max_epochs=1, seed=0, network=a.network, limit_rows=a.limit_rows, **ddp, **({'batch_size': a.batch_size} if a.batch_size else {}))
    t0 = time.perf_counter()
    if a.mode == 'memory':
        train, test, schema = load_for_run(a.path, TARGET, ['sex', 'race'], stream=False)
        t_load = time.perf_counter() - t0
        res = fit(train, schema, p, progress=False, logger=False, callbacks=[EpochTimer()])
    else:
        train, test, schema = load_for_run(a.path, TARGET, ['sex', 'race'], stream=True)
        t_load = time.perf_counter() - t0
        res = fit_stream(train, schema, p, progress=False, logger=False, callbacks=[EpochTimer()])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(mode=a.mode, rows=a.rows, rank=int(os.environ.get('RANK', 0)), world=int(os.environ.get('WORLD_SIZE', 1)),
                load_s=round(t_load, 2), epoch_s=round(times.get('epoch_s', float('nan')), 2), total_s=round(time.perf_counter() - t0, 2),
                train_rows=res.train_rows, batch_size=res.params.get('effective_batch_size'), peak_rss_bytes=rss,
                val_metrics=res.val_metrics)

def measure(path: Path, rows: int, mode: str, out: Path, batch_size=0, network='tabm', limit_rows=0, timeout=7200) -> list:
    "Run one worker (or 2 DDP ranks under torchrun); their reports."
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob('*.json'): f.unlink()
    args = ['--worker', '--path', str(path), '--rows', str(rows), '--mode', 'stream' if mode == 'ddp' else mode, '--out', str(out),
            '--batch-size', str(batch_size), '--network', network, '--limit-rows', str(limit_rows)]
    if mode == 'ddp':
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '--max-restarts', '0',
               str(Path(__file__).resolve()), *args]
    else: cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode: raise RuntimeError(f"{mode} at {rows:,} rows failed ({r.returncode}): {r.stderr[-2000:]}")
    reps = [json.loads(f.read_text()) for f in sorted(out.glob('*.json'))]
    for x in reps: x['wall_s'] = round(time.perf_counter() - t0, 2)
    return reps

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument('--modes', nargs='+', default=['memory', 'stream', 'ddp'])
    ap.add_argument('--memory-max', type=int, default=1_000_000, help='largest table the in-memory path is measured on')
    ap.add_argument('--ddp-sizes', type=int, nargs='+', default=[1_000_000])
    ap.add_argument('--batch-size', type=int, default=0, help='0: the default (growing with the table when streamed)')
    ap.add_argument('--network', default='tabm', help="the network trained ('tabm', the default, or 'mlp')")
    ap.add_argument('--limit-rows', type=int, default=0, help='end each epoch after this many training rows (0: whole epochs); for a loaded machine')
    ap.add_argument('--worker', action='store_true'); ap.add_argument('--path'); ap.add_argument('--rows', type=int)
    ap.add_argument('--mode'); ap.add_argument('--out')
    a = ap.parse_args()
    if a.worker:
        common.isolate('mlkit-bench-scale-w-')
        os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
        rep = worker(a)
        Path(a.out, f"rank{rep['rank']}.json").write_text(json.dumps(rep))
        return
    tmp = common.isolate('mlkit-bench-scale-')
    results = []
    try:
        for n in sorted(a.sizes):
            path = generate(tmp/f'table-{n}', n)
            for mode in a.modes:
                if mode == 'memory' and n > a.memory_max: continue
                if mode == 'ddp' and n not in a.ddp_sizes: continue
                print(f"{mode} at {n:,} rows ...", flush=True)
                reps = measure(path, n, mode, tmp/'out', a.batch_size, a.network, a.limit_rows)
                for x in reps: x.update(network=a.network, limit_rows=a.limit_rows)
                for x in reps: print(f"  rank {x['rank']}: epoch {x['epoch_s']} s, peak RSS {x['peak_rss_bytes'] / GIB:.2f} GiB, "
                                     f"batch {x['batch_size']}, load {x['load_s']} s, wall {x['wall_s']} s", flush=True)
                results += reps
            shutil.rmtree(path, ignore_errors=True)
    finally: common.cleanup(tmp)
    common.write_result('scale', summarize(results))
    Path(common.OUT/'scale.md').write_text(markdown(results))

def _rows(r) -> int: return min(r['train_rows'], r.get('limit_rows') or r['train_rows'])   # rows an epoch trained on

def summarize(results: list) -> dict:
    "The result file: every report, the goals' table."
    one = lambda mode, n: [r for r in results if r['mode'] == mode and r['rows'] == n and r['world'] == 1]
    table = []
    for r in results:
        tag = 'ddp x2 rank ' + str(r['rank']) if r['world'] > 1 else r['mode']
        rate = _rows(r) / max(r['world'], 1) / r['epoch_s'] if r['epoch_s'] else None
        table.append(dict(metric=f"{tag} {r['rows']:,} rows: epoch s (rows/s), peak RSS",
                          value=f"{r['epoch_s']} s ({rate:,.0f} rows/s), {r['peak_rss_bytes'] / GIB:.2f} GiB, batch {r['batch_size']}" if rate else 'n/a'))
    streams = sorted((r for r in results if r['mode'] == 'stream' and r['world'] == 1), key=lambda r: r['rows'])
    if len(streams) >= 2:
        per = [r['epoch_s'] / _rows(r) * 1e6 for r in streams]
        table.append(dict(metric='stream: epoch µs a training row, smallest -> largest table', value=' -> '.join(f"{v:.1f}" for v in per),
                          goal='linear (about constant)', met=max(per) <= 1.5 * min(per)))
    big = [r for r in streams if r['rows'] >= 10_000_000]
    if big: table.append(dict(metric='stream 10M rows: peak RSS', value=f"{big[-1]['peak_rss_bytes'] / GIB:.2f} GiB", goal='<= 2 GiB',
                              met=big[-1]['peak_rss_bytes'] <= 2 * GIB))
    for n in sorted({r['rows'] for r in results if r['world'] > 1}):
        d, s = [r for r in results if r['rows'] == n and r['world'] > 1], one('stream', n)
        if d and s:
            table.append(dict(metric=f"ddp x2 {n:,} rows: peak RSS per process vs one process",
                              value=f"{max(r['peak_rss_bytes'] for r in d) / GIB:.2f} vs {s[0]['peak_rss_bytes'] / GIB:.2f} GiB",
                              goal='<= one process', met=max(r['peak_rss_bytes'] for r in d) <= s[0]['peak_rss_bytes'] * 1.02))
    return dict(results=results, table=table, load_avg_at_end=[round(x, 2) for x in os.getloadavg()],
                notes='epoch s: one training epoch with its validation pass (Lightning callback); peak RSS: getrusage of each process. '
                      'Generated Adult-like data, 15 columns, Parquet files of 1M rows (row groups of 131,072).')

def markdown(results: list) -> str:
    "The measurements as a Markdown table (reports/bench/scale.md)."
    lines = ['| mode | rows | processes | network | batch | epoch s | rows/s a process | peak RSS GiB | load s |', '|---|---|---|---|---|---|---|---|---|']
    for r in results:
        rate = _rows(r) / max(r['world'], 1) / r['epoch_s'] if r['epoch_s'] else float('nan')
        lines.append(f"| {r['mode']} | {r['rows']:,} | {r['world']} (rank {r['rank']}) | {r.get('network', 'tabm')} | {r['batch_size']} | "
                     f"{r['epoch_s']} | {rate:,.0f} | {r['peak_rss_bytes'] / GIB:.2f} | {r['load_s']} |")
    return '\n'.join(lines) + '\n'

if __name__ == '__main__': main()
