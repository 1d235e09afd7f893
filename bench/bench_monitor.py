"""Monitoring at scale: `mlkit monitor` (in-process `monitor()`) on 10k, 100k and 1M current rows x the Adult columns,
time and peak memory, next to Evidently's own DataDriftPreset run on the same full data (no sampling).

Each measurement runs in its own process (peak RSS = ru_maxrss of that process). Goal: 1M rows in <= 60 s and <= 4 GiB.
Usage: bench_monitor.py [--sizes 10000 100000 1000000] [--repeats 2] [--evidently-max 1000000]
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path
import common

def make_current(n: int, path: Path):
    "n rows drawn with replacement from adult.test (plus small noise on numerics so rows are not all duplicates)."
    import numpy as np
    from mlkit.data import load_adult
    te = load_adult('test')
    rng = np.random.default_rng(n)
    df = te.iloc[rng.integers(0, len(te), n)].reset_index(drop=True)
    df['fnlwgt'] = df['fnlwgt'] + rng.integers(-500, 500, n)
    df.to_parquet(path, index=False)

def one(which: str, current: str, out_dir: str) -> dict:
    t0 = time.perf_counter()
    if which == 'mlkit':
        from mlkit.monitoring import monitor
        r = monitor(current, out_dir=out_dir, workspace=False)
        info = dict(rows=r['rows'], sampled_rows=r['sampled_rows'], drift_share=r['drift_share'])
    else:
        import pandas as pd
        from evidently import Report, Dataset, DataDefinition
        from evidently.presets import DataDriftPreset
        from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
        tr = load_adult('train'); s = infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)
        cur = pd.read_parquet(current)
        num, cat = s.numeric(), s.categorical()
        dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
        fix = lambda d: d[num + cat].assign(**{c: d[c].fillna('(missing)').astype(str) for c in cat})
        snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(fix(cur), data_definition=dd),
                                                Dataset.from_pandas(fix(tr.sample(5000, random_state=0)), data_definition=dd))
        snap.save_json(str(Path(out_dir)/'evidently.json'))
        info = dict(rows=len(cur))
    info['seconds'] = round(time.perf_counter() - t0, 3)
    info['peak_rss_mib'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return info

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', nargs='+', type=int, default=[10_000, 100_000, 1_000_000])
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--evidently-max', type=int, default=1_000_000, help='largest size Evidently runs on (it has no sampling)')
    ap.add_argument('--one', nargs=3, metavar=('WHICH', 'CURRENT', 'OUT'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print('RESULT ' + json.dumps(one(*a.one)), flush=True); return
    tmp = common.isolate()
    try:
        common.make_model(limit_rows=4000, max_epochs=2, name='adult')
        # the registered model needs its reference sample (mlkit train stores one; make_model does not)
        from mlkit.monitoring import reference_sample, REFERENCE
        from mlkit.data import load_adult
        from mlkit import registry
        tag = registry.alias_target('production')
        folder = registry.model_path(tag)
        reference_sample(load_adult('train'), 5000).to_parquet(folder/REFERENCE, index=False)
        registry.write_manifest(folder)
        rows, table = {}, []
        for n in a.sizes:
            cur = tmp/f'current-{n}.parquet'; make_current(n, cur)
            for which in ('mlkit', 'evidently'):
                if which == 'evidently' and n > a.evidently_max: continue
                runs = []
                for k in range(a.repeats):
                    out = tmp/f'out-{which}-{n}-{k}'; out.mkdir()
                    try:
                        p = subprocess.run([sys.executable, __file__, '--one', which, str(cur), str(out)], capture_output=True, text=True, timeout=900)
                        line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
                        runs.append(json.loads(line[-1][7:]) if line else dict(error=(p.stderr or '')[-500:]))
                    except subprocess.TimeoutExpired: runs.append(dict(error='timeout after 900 s'))
                ok = [r for r in runs if 'error' not in r]
                rows[f'{which}_{n}'] = dict(runs=runs, seconds=common.stats([r['seconds'] for r in ok]) if ok else None,
                                            peak_rss_mib=common.stats([r['peak_rss_mib'] for r in ok]) if ok else None)
                if ok:
                    sec, mem = rows[f'{which}_{n}']['seconds'], rows[f'{which}_{n}']['peak_rss_mib']
                    goal = '<= 60 s, <= 4096 MiB' if which == 'mlkit' and n == 1_000_000 else ''
                    met = (sec['median'] <= 60 and mem['max'] <= 4096) if goal else None
                    samp = f", drift on {ok[0].get('sampled_rows'):,} sampled rows" if which == 'mlkit' else ', no sampling'
                    table.append(dict(metric=f"{which} monitor, {n:,} rows", value=f"{common.spread(sec, '{:.1f}', ' s')}; peak {mem['max']:.0f} MiB{samp}", goal=goal, met=met))
                else: table.append(dict(metric=f"{which} monitor, {n:,} rows", value=f"failed: {runs[0].get('error', '')[:120]}", goal='', met=None))
                print(table[-1], flush=True)
        common.write_result('monitor', dict(results=rows, table=table, notes=(
            "mlkit: monitor() end to end (read Parquet, completeness and freshness on every row, a uniform sample of "
            "monitor_sample_rows=100,000 rows scored and compared with Evidently, reports written; workspace logging off). "
            "Evidently: DataDriftPreset on the full current data against a 5,000-row reference, no model scoring.")))
    finally: common.cleanup(tmp)

if __name__ == '__main__': main()
