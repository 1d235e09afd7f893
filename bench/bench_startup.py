"""Start-up: `mlkit --help` wall time, and `mlkit serve` start to the first 200 on /readyz (and the first prediction).

    .venv/bin/python bench/bench_startup.py [--help-runs 10] [--serve-runs 3]
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time, urllib.request
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
TMP = common.isolate()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--help-runs', type=int, default=10); ap.add_argument('--serve-runs', type=int, default=3)
    a = ap.parse_args()
    mlkit = str(common.VENV_BIN/'mlkit')
    env = os.environ.copy()
    subprocess.run([mlkit, '--help'], capture_output=True, env=env)           # warm the page cache, untimed
    helps = []
    for _ in range(a.help_runs):
        t0 = time.perf_counter()
        r = subprocess.run([mlkit, '--help'], capture_output=True, env=env)
        helps.append(time.perf_counter() - t0)
        if r.returncode: raise RuntimeError(f"mlkit --help failed: {r.stderr.decode()[-300:]}")
    bare = []
    for _ in range(5):                                                          # the interpreter's own floor
        t0 = time.perf_counter(); subprocess.run([sys.executable, '-c', 'pass'], env=env); bare.append(time.perf_counter() - t0)
    print(f"mlkit --help: {[round(x, 3) for x in helps]}", flush=True)

    print('training and registering a small model for `mlkit serve` ...', flush=True)
    tag, folder = common.make_model(limit_rows=2000, max_epochs=1)
    from mlkit.data import load_adult, ADULT_TARGET
    _, test = load_adult()
    rec = {k: (None if isinstance(v, float) and v != v else (v.item() if hasattr(v, 'item') else v))
           for k, v in test.drop(columns=[ADULT_TARGET]).iloc[0].to_dict().items()}
    body = json.dumps(dict(rows=[rec])).encode()
    ready, first = [], []
    for i in range(a.serve_runs):
        port = common.free_port()
        log = open(TMP/f'serve-{i}.log', 'w')
        t0 = time.perf_counter()
        proc = subprocess.Popen([mlkit, 'serve', '--port', str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            w = common.wait_http(f'http://127.0.0.1:{port}/readyz', 180, proc, interval=0.02)
            if w is None: raise RuntimeError(f"mlkit serve did not become ready: {(TMP/f'serve-{i}.log').read_text()[-800:]}")
            ready.append(time.perf_counter() - t0)
            req = urllib.request.Request(f'http://127.0.0.1:{port}/predict', data=body, headers={'content-type': 'application/json'}, method='POST')
            with urllib.request.urlopen(req, timeout=60) as r:
                assert r.status == 200 and len(json.loads(r.read())['predictions']) == 1
            first.append(time.perf_counter() - t0)
        finally:
            common.stop(proc); log.close()
        print(f"serve run {i + 1}: ready {ready[-1]:.2f}s, first prediction {first[-1]:.2f}s", flush=True)
    h, b, r_, f_ = common.stats(helps), common.stats(bare), common.stats(ready, 3), common.stats(first, 3)
    res = dict(model=tag, help_s=h, python_bare_s=b, serve_ready_s=r_, serve_first_prediction_s=f_,
               goals=dict(help_s_max=0.5))
    res['table'] = [
        dict(metric=f'`mlkit --help` wall time (n={h["n"]})', value=common.spread(h, '{:.3f}', ' s'), goal='<= 0.5 s', met=h['median'] <= 0.5),
        dict(metric='`python -c pass` (interpreter floor)', value=common.spread(b, '{:.3f}', ' s')),
        dict(metric=f'`mlkit serve` start to first 200 on /readyz (n={r_["n"]})', value=common.spread(r_, '{:.2f}', ' s')),
        dict(metric='`mlkit serve` start to first prediction', value=common.spread(f_, '{:.2f}', ' s')),
    ]
    common.write_result('startup', res)

if __name__ == '__main__':
    try: main()
    finally: common.cleanup(TMP)
