"""The corpus run (`make corpus`): `mlkit run` end to end on every table of tests/corpus.py, one results table.

For each table: write it to reports/corpus/<stamp>/data/<name>.csv, run
`.venv/bin/mlkit run --data FILE --target T [--sensitive ...] --simulate-rows N [-p max_epochs E]` as a subprocess with
its own MLKIT_HOME and MLKIT_REPORTS under reports/corpus/<stamp>/ (never the user's registry or reports/runs;
WANDB_MODE=offline, wandb files there too), read the run's summary.json and collect rows, inferred vs expected task,
exit code, status, promotion, failed gates, the model's primary metrics next to the baselines' and seconds taken.

Writes reports/corpus/<stamp>/results.json and results.md (plus logs/<name>.log, one per table) and copies both to
bench/results/corpus.json and corpus.md. Exit status 1 when any table's `mlkit run` exited non-zero or its summary
status is not 'succeeded' (2 for bad arguments).

    .venv/bin/python bench/corpus.py [--tables iris,churn] [--max-rows 20000] [--epochs 5] [--simulate-rows 300]
                                     [--timeout 900] [--fmt csv|parquet] [--no-build] [-p NAME VALUE] [--no-copy] [-v]
"""
from __future__ import annotations
import argparse, json, os, re, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH)); sys.path.insert(0, str(ROOT/'tests'))
import common                     # noqa: E402  (machine facts, result conventions)
import corpus as C                # noqa: E402  (tests/corpus.py)

MLKIT = ROOT/'.venv'/'bin'/'mlkit'
PRIMARY = dict(binary=('accuracy', 'roc_auc'), multiclass=('accuracy', 'log_loss'), regression=('rmse', 'r2'))
LOWER_IS_BETTER = {'log_loss', 'rmse', 'mae', 'mse', 'brier'}

def _env(home: Path, reports: Path, wandb_dir: Path) -> dict:
    "The child's environment: all mutable mlkit, BentoML and wandb state under the corpus folder."
    env = os.environ.copy()
    for k in ('MLKIT_SETTINGS', 'MLKIT_API_TOKEN', 'MLKIT_SIGNING_KEY', 'MLKIT_PREDICTION_LOG', 'BENTOML_HOME'):
        env.pop(k, None)
    env.update(MLKIT_HOME=str(home), MLKIT_REPORTS=str(reports), WANDB_MODE='offline', WANDB_SILENT='true',
               WANDB_DIR=str(wandb_dir), BENTOML_DO_NOT_TRACK='True', PYTHONUNBUFFERED='1')
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return env

def _run(argv, env, log: Path, timeout: float, verbose: bool) -> tuple:
    "Run `argv` in its own session (its whole process group is stopped on timeout); (exit code or 'timeout', seconds)."
    import threading
    t0 = time.perf_counter()
    with open(log, 'w') as f:
        f.write('$ ' + ' '.join(map(str, argv)) + '\n'); f.flush()
        p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors='replace', start_new_session=True)
        def pump():
            for line in p.stdout:
                f.write(line); f.flush()
                if verbose: print('    | ' + line, end='', flush=True)
        th = threading.Thread(target=pump, daemon=True); th.start()
        try: rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            common.stop(p, timeout=15)
            rc = 'timeout'
        th.join(10)
        if rc == 'timeout': f.write(f'\n[corpus] timed out after {timeout:.0f}s: stopped process group {p.pid}\n')
    return rc, time.perf_counter() - t0

def _git_commit() -> str|None:
    try:
        r = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True, timeout=10)
        d = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return r.stdout.strip() + ('-dirty' if d.stdout.strip() else '') if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired): return None

def _summary_path(log: Path, reports: Path) -> Path|None:
    "The run's summary.json: from its `summary      <path>` output line, else the newest reports/runs/run-*/."
    try: text = log.read_text(errors='replace')
    except OSError: text = ''
    found = re.findall(r'^summary\s+(\S.*summary\.json)\s*$', text, flags=re.M)
    if found and Path(found[-1]).exists(): return Path(found[-1])
    runs = sorted((reports/'runs').glob('run-*/summary.json'), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None

def _num(v):
    return round(float(v), 4) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

def _metrics(summary: dict, task: str) -> tuple:
    "(model {key: value}, baselines {name: {key: value}}) for the task's primary metric keys; missing keys -> None."
    keys = PRIMARY.get(task, ())
    m = summary.get('metrics') or {}
    model = {k: _num(m.get(k)) for k in keys}
    base = m.get('baselines') or summary.get('baselines') or {}
    baselines = {name: {k: _num((v or {}).get(k)) for k in keys} for name, v in base.items() if isinstance(v, dict)}
    return model, baselines

def _best_baseline(baselines: dict, key: str):
    vals = [(v[key], n) for n, v in baselines.items() if v.get(key) is not None]
    if not vals: return None
    return (min if key in LOWER_IS_BETTER else max)(vals)

def run_table(name: str, folder: Path, a) -> dict:
    t = C.TABLES[name]
    n_rows = t.default_rows
    if a.max_rows and (n_rows is None or n_rows > a.max_rows): n_rows = a.max_rows
    t0 = time.perf_counter()
    path = C.write_table(name, folder/'data', n_rows=n_rows, seed=a.seed, fmt=a.fmt)
    import pandas as pd
    df = pd.read_csv(path) if a.fmt == 'csv' else pd.read_parquet(path)
    write_s = time.perf_counter() - t0
    home, reports = folder/'home'/name, folder/'reports'/name
    argv = [str(MLKIT), 'run', '--data', str(path), '--target', t.target]
    if t.sensitive: argv += ['--sensitive', *t.sensitive]
    argv += ['--simulate-rows', str(a.simulate_rows)]
    if a.epochs is not None: argv += ['-p', 'max_epochs', str(a.epochs)]
    if a.seed: argv += ['-p', 'seed', str(a.seed)]
    for k, v in a.param or []: argv += ['-p', k, v]
    if a.no_build: argv.append('--no-build')
    log = folder/'logs'/f'{name}.log'; log.parent.mkdir(parents=True, exist_ok=True)
    rc, secs = _run(argv, _env(home, reports, folder/'wandb'/name), log, a.timeout, a.verbose)
    sp = _summary_path(log, reports)
    s = {}
    if sp:
        try: s = json.loads(sp.read_text())
        except (OSError, json.JSONDecodeError): s = {}
    data = s.get('data') or {}
    task = data.get('task') or t.task
    model, baselines = _metrics(s, task)
    gates = s.get('gates') or []
    status = s.get('status') or ('timeout' if rc == 'timeout' else 'no summary')
    ok = rc == 0 and status == 'succeeded'
    return dict(table=name, rows=len(df), columns=df.shape[1], file=str(path), expected_task=t.task, task=data.get('task'),
                task_ok=data.get('task') == t.task if data.get('task') else None, classes=data.get('classes'),
                dropped=data.get('dropped'), id_columns=data.get('id_columns'), exit_code=rc, status=status,
                error=(s.get('error') or None) if not ok else None, ok=ok, promoted=s.get('promoted'),
                failed_gates=[g.get('gate') for g in gates if not g.get('passed')], gates=len(gates),
                metrics=model, baselines=baselines, run_id=s.get('run_id'), summary=str(sp) if sp else None,
                log=str(log), seconds=round(secs, 1), write_seconds=round(write_s, 2), durations=s.get('durations'),
                monitor_breaches=(s.get('monitor') or {}).get('breaches'), note=t.note)

# ---------------------------------------------------------------------------------------------------------------

def _fmt(v, key=None):
    if v is None: return '-'
    if isinstance(v, float): return f'{v:,.1f}' if key == 'rmse' and abs(v) >= 1000 else f'{v:.4f}'
    return str(v)

def _metric_cell(r: dict, key: str) -> str:
    v = r['metrics'].get(key)
    best = _best_baseline(r['baselines'], key)
    if v is None and best is None: return '-'
    base = f"{_fmt(best[0], key)} ({best[1]})" if best else '-'
    return f"{_fmt(v, key)} vs {base}"

def markdown(res: dict) -> str:
    m = res['machine']
    lines = ['# mlkit corpus run', '',
             f"`{res['command']}`", '',
             f"{res['finished_at']} · {m.get('cores')} cores {m.get('cpu_model')} · python {m.get('python')} · "
             f"torch {m.get('libraries', {}).get('torch')} · git {res.get('git_commit') or '-'}", '',
             f"{res['passed']}/{len(res['tables'])} tables succeeded in {res['seconds']:.0f}s. Metrics: the model's value vs "
             "the best baseline (its name); binary accuracy / roc_auc, multiclass accuracy / log_loss, regression rmse / r2. "
             "'-': not reported.", '',
             '| table | rows | task (expected) | exit | status | promoted | failed gates | metric 1 | metric 2 | s |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in res['tables']:
        keys = PRIMARY.get(r['task'] or r['expected_task'], ('', ''))
        task = r['task'] or '-'
        if r['task'] and not r['task_ok']: task = f"**{task}** ({r['expected_task']})"
        elif not r['task']: task = f"- ({r['expected_task']})"
        status = r['status'] if r['ok'] else f"**{r['status']}**"
        lines.append(f"| {r['table']} | {r['rows']:,} | {task} | {r['exit_code']} | {status} | {_fmt(r['promoted'])} | "
                     f"{', '.join(r['failed_gates']) or '-'} | {keys[0]} {_metric_cell(r, keys[0])} | "
                     f"{keys[1]} {_metric_cell(r, keys[1])} | {r['seconds']:.0f} |")
    errs = [r for r in res['tables'] if r.get('error')]
    if errs:
        lines += ['', '## errors', '']
        for r in errs: lines.append(f"- **{r['table']}**: {str(r['error']).strip().splitlines()[-1][:300]} (log: `{r['log']}`)")
    lines += ['', '## tables', ''] + [f"- **{r['table']}** ({r['expected_task']}): {r['note']}" for r in res['tables']]
    return '\n'.join(lines) + '\n'

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tables', help=f"comma-separated names (default: all: {','.join(C.TABLES)})")
    ap.add_argument('--max-rows', type=int, help='shrink tables larger than this (e.g. clicks: 100,000 rows)')
    ap.add_argument('--epochs', type=int, help='passes -p max_epochs N to every run')
    ap.add_argument('--simulate-rows', type=int, default=300, help='rows of simulated traffic per run (default 300; 0 skips serving)')
    ap.add_argument('--timeout', type=float, default=900, help='seconds per table (default 900)')
    ap.add_argument('--fmt', choices=['csv', 'parquet'], default='csv', help='file format the tables are written in')
    ap.add_argument('--seed', type=int, default=0, help='seed of the generated tables (and -p seed when not 0)')
    ap.add_argument('-p', '--param', nargs=2, action='append', metavar=('NAME', 'VALUE'), help='more training parameters, passed on')
    ap.add_argument('--no-build', action='store_true', help='pass --no-build (skip bentoml build)')
    ap.add_argument('--out', help='the output folder (default reports/corpus/<UTC stamp>)')
    ap.add_argument('--no-copy', action='store_true', help='do not copy results.json/.md to bench/results/corpus.json/.md')
    ap.add_argument('-v', '--verbose', action='store_true', help="stream each run's output")
    a = ap.parse_args(argv)
    names = a.tables.split(',') if a.tables else list(C.TABLES)
    unknown = [n for n in names if n not in C.TABLES]
    if unknown: ap.error(f"unknown table(s) {', '.join(unknown)}; tables: {', '.join(C.TABLES)}")
    if not MLKIT.exists(): ap.error(f'{MLKIT} is missing: run `make install` first')
    stamp = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    folder = Path(a.out).absolute() if a.out else ROOT/'reports'/'corpus'/stamp
    folder.mkdir(parents=True, exist_ok=True)
    command = 'bench/corpus.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    print(f"corpus run: {len(names)} tables -> {folder}", flush=True)
    rows, t_all = [], time.perf_counter()
    for i, n in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {n} ...", flush=True)
        try: r = run_table(n, folder, a)
        except Exception as e:   # a broken table must not hide the others' results
            r = dict(table=n, rows=0, columns=0, expected_task=C.TABLES[n].task, task=None, task_ok=None, exit_code='error',
                     status='runner error', error=f'{type(e).__name__}: {e}', ok=False, promoted=None, failed_gates=[],
                     metrics={}, baselines={}, seconds=0.0, log='-', note=C.TABLES[n].note)
        rows.append(r)
        keys = PRIMARY.get(r['task'] or r['expected_task'], ())
        mets = '  '.join(f"{k} {_metric_cell(r, k)}" for k in keys)
        print(f"[{i}/{len(names)}] {n}: exit {r['exit_code']}, {r['status']}, task {r['task']} (expected {r['expected_task']}), "
              f"promoted {r['promoted']}, failed gates {r['failed_gates'] or '-'}; {mets}; {r['seconds']:.0f}s", flush=True)
        if not r['ok'] and r.get('error'): print(f"    error: {str(r['error']).strip().splitlines()[-1][:300]}  (log {r.get('log')})", flush=True)
    passed = sum(r['ok'] for r in rows)
    res = dict(benchmark='corpus', finished_at=common.now(), command=command, folder=str(folder), git_commit=_git_commit(),
               options=dict(tables=names, max_rows=a.max_rows, epochs=a.epochs, simulate_rows=a.simulate_rows,
                            timeout=a.timeout, fmt=a.fmt, seed=a.seed, params=a.param, no_build=a.no_build),
               passed=passed, failed=[r['table'] for r in rows if not r['ok']], seconds=round(time.perf_counter() - t_all, 1),
               machine=common.machine(), tables=rows)
    # rows in bench/common.py's {metric, value, goal, met} form, so the shared summary table can show the corpus too
    res['table'] = [dict(metric=f"corpus {r['table']} ({r['rows']:,} rows, {r['task'] or r['expected_task']})",
                         value=f"{r['status']}, promoted {_fmt(r['promoted'])}; " + '; '.join(
                             f"{k} {_metric_cell(r, k)}" for k in PRIMARY.get(r['task'] or r['expected_task'], ())),
                         goal='succeeded', met=r['ok']) for r in rows]
    text, md = json.dumps(res, indent=1, default=str) + '\n', markdown(res)
    (folder/'results.json').write_text(text); (folder/'results.md').write_text(md)
    if not a.no_copy:
        common.KEEP.mkdir(parents=True, exist_ok=True)
        (common.KEEP/'corpus.json').write_text(text); (common.KEEP/'corpus.md').write_text(md)
    print('\n' + md)
    print(f"results: {folder/'results.json'} and results.md" + ('' if a.no_copy else f" (copied to {common.KEEP}/corpus.json, corpus.md)"))
    if passed < len(rows):
        print(f"FAILED: {', '.join(res['failed'])}", file=sys.stderr); return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
