"""Run every benchmark (`make bench`): each bench_<name>.py in its own process, then the summary table.

Writes reports/bench/<name>.json and reports/bench/README.md, and the same files into bench/results/ (kept for
comparison). Goals are reported, never asserted: the exit status is non-zero only when a benchmark crashed.

    .venv/bin/python bench/run_all.py [--only training serving ...] [--quick]

Installs the tools it needs when missing: `wrk` (apt-get, when run as root; otherwise bench/loadgen.py is used) and
py-spy (pip, into this venv).
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

ORDER = ['startup', 'run_overhead', 'sweep', 'training', 'serving', 'network_cost', 'monitor', 'monitor_noise', 'scale', 'corpus']   # sweep before training: it uses the sweep's best
SCRIPT = dict(corpus='corpus.py')          # `make corpus`: the full `mlkit run` on every table of tests/corpus.py
TIMEOUT = dict(sweep=2100, corpus=9000, monitor_noise=2400, scale=7200)
ARGS = dict(corpus=['--sweep-trials', '4'])     # `make bench` adds a small sweep per corpus table (`make corpus` runs none)
QUICK = dict(startup=['--help-runs', '5', '--serve-runs', '1'], run_overhead=['--repeats', '1'],
             sweep=['--trials', '2', '--cv', '2', '--limit-rows', '2000', '--max-epochs', '1', '--timeout', '60'],
             training=['--epochs', '1', '--repeats', '1', '--skip-fit', '--skip-profile'],
             network_cost=['--calls', '2000', '--duration', '3', '--warmup', '1', '--scenarios', 'single_c1', 'single_c64_w2'],
             serving=['--duration', '3', '--warmup', '1', '--profile-seconds', '3', '--profiles', 'c64'],
             monitor=['--sizes', '10000', '100000', '--repeats', '1'],
             monitor_noise=['--samples', '3', '-p', 'max_epochs', '2'],
             scale=['--sizes', '100000', '1000000', '--ddp-sizes', '100000', '--limit-rows', '100000'],
             corpus=['--max-rows', '5000', '--epochs', '2', '--simulate-rows', '100'])

def ensure_wrk():
    if shutil.which('wrk'): return True
    if shutil.which('apt-get') and hasattr(os, 'geteuid') and os.geteuid() == 0:
        print('installing wrk (apt-get) ...', flush=True)
        cmd = 'apt-get install -y -q wrk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1)'
        try: subprocess.run(['bash', '-c', cmd], timeout=300, env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})
        except subprocess.TimeoutExpired: pass
    ok = shutil.which('wrk') is not None
    if not ok: print('wrk unavailable: the serving benchmark falls back to bench/loadgen.py (python)', flush=True)
    return ok

def ensure_pyspy():
    if (common.VENV_BIN/'py-spy').exists() or shutil.which('py-spy'): return True
    print('installing py-spy into the venv (pip) ...', flush=True)
    try: subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'py-spy'], timeout=300)
    except subprocess.TimeoutExpired: pass
    return (common.VENV_BIN/'py-spy').exists()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--only', nargs='+', choices=ORDER, help='run these benchmarks only')
    ap.add_argument('--quick', action='store_true', help='a fast smoke run with few repeats (numbers are not comparable)')
    a = ap.parse_args()
    names = [n for n in ORDER if not a.only or n in a.only]
    print(f"machine: {common.machine()}", flush=True)
    if 'serving' in names or 'network_cost' in names: ensure_wrk()
    if 'serving' in names: ensure_pyspy()
    failed, took = [], {}
    t_all = time.perf_counter()
    for n in names:
        argv = [sys.executable, str(common.BENCH/SCRIPT.get(n, f'bench_{n}.py'))] + (QUICK[n] if a.quick else ARGS.get(n, []))
        print(f"\n=== {n}: {' '.join(argv[1:])}", flush=True)
        t0 = time.perf_counter()
        try: rc = subprocess.run(argv, cwd=common.ROOT, timeout=TIMEOUT.get(n, 1500)).returncode
        except subprocess.TimeoutExpired: rc = 'timeout'
        took[n] = round(time.perf_counter() - t0, 1)
        print(f"=== {n}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {took[n]:.0f}s", flush=True)
        if rc != 0: failed.append(n)
    common.write_tables()
    print(f"\nall benchmarks in {time.perf_counter() - t_all:.0f}s: {took}")
    print(f"results: {common.OUT}/ (and a copy in {common.KEEP}/)\n")
    print((common.OUT/'README.md').read_text())
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr); return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
