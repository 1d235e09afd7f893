"""The corpus run (`make corpus`): `mlkit run` end to end on every table of tests/corpus.py, one results table.

For each table: write it to reports/corpus/<stamp>/data/<name>.csv, run
`.venv/bin/mlkit run --data FILE --target T [--sensitive ...] --simulate-rows N [-p max_epochs E]` as a subprocess with
its own MLKIT_HOME and MLKIT_REPORTS under reports/corpus/<stamp>/ (never the user's registry or reports/runs;
WANDB_MODE=offline, wandb files there too), read the run's summary.json and collect rows, inferred vs expected task,
exit code, status, promotion, failed gates, the model's primary metrics next to the baselines' and seconds taken.

Per table, the check "the default network is within 0.5 points of accuracy of the best classical baseline
(logistic/linear regression or HistGradientBoosting; classification, accuracy even where the primary metric is ROC AUC),
or within 2% of its RMSE (regression), or better", met yes/no (a target, never a failure of the run).

With `--sweep-trials N` (off by default; `make bench` passes it), each table also gets a small sweep after its run:
`mlkit sweep --data FILE ... --trials N --cv 2 --no-promote --study corpus-<name>` in the same isolated state, stopped after
`--sweep-timeout` seconds (no new trial after half of it). Reported: the sweep's best cross-validated value of the task's
primary metric (the mean over the folds of the training rows) against trial 0's (the default parameters: the best is
never worse by construction), trials and seconds. `--sweep-refit` also trains the best parameters
(`mlkit train --params best.json`, on the same training rows) and reports its test accuracy / RMSE (a full train +
evaluate run per table, so off by default).

Writes reports/corpus/<stamp>/results.json and results.md (plus logs/<name>.log, one per table) and copies both to
bench/results/corpus.json and corpus.md. Exit status 1 when any table's `mlkit run` exited non-zero or its summary
status is not 'succeeded' (2 for bad arguments); a sweep's failure is reported, not an exit status.

    .venv/bin/python bench/corpus.py [--tables iris,churn] [--max-rows 20000] [--epochs 5] [--simulate-rows 300]
                                     [--timeout 900] [--fmt csv|parquet] [--no-build] [-p NAME VALUE] [--no-copy] [-v]
                                     [--sweep-trials 4 [--sweep-cv 2] [--sweep-timeout 600] [--sweep-refit]]
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

ACC_TOLERANCE, RMSE_TOLERANCE = 0.005, 0.02     # 0.5 points of accuracy; 2% of the baseline's RMSE
CLASSICAL = ('linear', 'hist_gradient_boosting')

def baseline_check(task: str, model: dict, baselines: dict) -> dict:
    "The default vs the best classical baseline: accuracy within 0.5 points (classification), RMSE within 2% (regression), or better."
    key = 'rmse' if task == 'regression' else 'accuracy'
    best = _best_baseline({k: v for k, v in baselines.items() if k in CLASSICAL}, key)
    v = model.get(key)
    if v is None or best is None: return dict(metric=key, model=v, baseline=None, baseline_value=None, met=None)
    if key == 'rmse': met, diff = v <= best[0] * (1 + RMSE_TOLERANCE), (v - best[0]) / best[0] if best[0] else None
    else: met, diff = v >= best[0] - ACC_TOLERANCE, v - best[0]
    return dict(metric=key, model=v, baseline=best[1], baseline_value=best[0], diff=round(diff, 4) if diff is not None else None,
                met=bool(met), rule='accuracy >= best - 0.005' if key == 'accuracy' else 'rmse <= 1.02 x best')

def run_sweep(name: str, t, path: Path, env: dict, folder: Path, a) -> dict:
    "A small `mlkit sweep` of the table (best CV value vs trial 0, the defaults); `--sweep-refit`: the best's test metrics."
    study = f'corpus-{name}'
    argv = [str(MLKIT), 'sweep', '--data', str(path), '--target', t.target]
    if t.sensitive: argv += ['--sensitive', *t.sensitive]
    argv += ['--trials', str(a.sweep_trials), '--cv', str(a.sweep_cv), '--timeout', f'{a.sweep_timeout / 2:g}', '--no-promote', '--study', study]
    extra = (['-p', 'max_epochs', str(a.epochs)] if a.epochs is not None else []) + (['-p', 'seed', str(a.seed)] if a.seed else [])
    for k, v in a.param or []: extra += ['-p', k, v]
    log = folder/'logs'/f'{name}.sweep.log'
    rc, secs = _run(argv + extra, env, log, a.sweep_timeout, a.verbose)
    sdir = Path(env['MLKIT_REPORTS'])/'sweeps'/study
    out = dict(exit_code=rc, seconds=round(secs, 1), log=str(log), dir=str(sdir), trials_asked=a.sweep_trials, cv=a.sweep_cv)
    try:
        best = json.loads((sdir/'best.json').read_text())
        import pandas as pd
        fr = pd.read_parquet(sdir/'trials.parquet')
    except (OSError, ValueError, ImportError) as e:
        return dict(out, error=f'no results ({rc}): {type(e).__name__}')
    t0 = fr[fr.number == 0]
    d0 = _num(t0.value.iloc[0]) if len(t0) and t0.state.iloc[0] == 'COMPLETE' else None
    higher = best.get('direction', 'maximize') == 'maximize'
    out.update(metric=best.get('metric'), best_value=_num(best.get('value')), best_std=_num(best.get('std')), best_trial=best.get('trial'),
               default_value=d0, default_std=_num(t0['std'].iloc[0]) if len(t0) else None,
               gain=round((_num(best['value']) - d0) * (1 if higher else -1), 4) if d0 is not None else None,
               trials=int(len(fr)), complete=int((fr.state == 'COMPLETE').sum()), pruned=int((fr.state == 'PRUNED').sum()),
               failed=int((fr.state == 'FAIL').sum()), seconds_per_trial=_num(fr.seconds.median()), params=best.get('params'))
    if a.sweep_refit:
        argv = [str(MLKIT), 'train', '--data', str(path), '--target', t.target] + (['--sensitive', *t.sensitive] if t.sensitive else [])
        argv += ['--params', str(sdir/'best.json')] + (['-p', 'seed', str(a.seed)] if a.seed else [])
        rlog = folder/'logs'/f'{name}.refit.log'
        rc2, secs2 = _run(argv, env, rlog, a.timeout, a.verbose)
        found = re.findall(r'^run \S+: (\S.*)$', rlog.read_text(errors='replace'), flags=re.M)
        try: m = json.loads((Path(found[-1])/'summary.json').read_text()).get('metrics') or {}
        except (IndexError, OSError, ValueError): m = {}
        out['refit'] = dict(exit_code=rc2, seconds=round(secs2, 1), accuracy=_num(m.get('accuracy')), rmse=_num(m.get('rmse')),
                            roc_auc=_num(m.get('roc_auc')), log=str(rlog))
    return out

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
    check = baseline_check(task, {**model, **{k: _num((s.get('metrics') or {}).get(k)) for k in ('accuracy', 'rmse')}},
                           {n: {k: _num(v.get(k)) for k in ('accuracy', 'rmse')} for n, v in ((s.get('metrics') or {}).get('baselines') or {}).items()
                            if isinstance(v, dict)})
    sweep = run_sweep(name, t, path, dict(_env(home, reports, folder/'wandb'/name), WANDB_MODE='disabled'), folder, a) if a.sweep_trials else None
    return dict(table=name, rows=len(df), columns=df.shape[1], file=str(path), expected_task=t.task, task=data.get('task'),
                task_ok=data.get('task') == t.task if data.get('task') else None, classes=data.get('classes'),
                dropped=data.get('dropped'), id_columns=data.get('id_columns'), exit_code=rc, status=status,
                error=(s.get('error') or None) if not ok else None, ok=ok, promoted=s.get('promoted'),
                failed_gates=[g.get('gate') for g in gates if not g.get('passed')], gates=len(gates),
                metrics=model, baselines=baselines, run_id=s.get('run_id'), summary=str(sp) if sp else None,
                log=str(log), seconds=round(secs, 1), write_seconds=round(write_s, 2), durations=s.get('durations'),
                monitor_breaches=(s.get('monitor') or {}).get('breaches'), note=t.note, baseline_check=check, sweep=sweep)

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
    met = [r['baseline_check']['met'] for r in res['tables'] if r.get('baseline_check')]
    lines += ['', '## the default vs the best classical baseline', '',
              f"Goal per table: accuracy within 0.5 points of the best of logistic regression and HistGradientBoosting "
              f"(classification), or RMSE within 2% of the best of linear regression and HistGradientBoosting (regression), or better. "
              f"Met on {sum(m is True for m in met)} of {len(met)} tables.", '',
              '| table | task | metric | default | best classical baseline | difference | met |', '|---|---|---|---|---|---|---|']
    for r in res['tables']:
        c = r.get('baseline_check') or {}
        if c.get('baseline') is None: lines.append(f"| {r['table']} | {r['task'] or '-'} | {c.get('metric', '-')} | - | - | - | - |"); continue
        diff = f"{c['diff']:+.2%}" if c['metric'] == 'rmse' else f"{100 * c['diff']:+.2f} points"
        lines.append(f"| {r['table']} | {r['task']} | {c['metric']} | {_fmt(c['model'], c['metric'])} | {_fmt(c['baseline_value'], c['metric'])} "
                     f"({c['baseline']}) | {diff} | {'yes' if c['met'] else '**no**'} |")
    sw = [r for r in res['tables'] if r.get('sweep')]
    if sw:
        o = res['options']
        lines += ['', '## small sweeps', '',
                  f"`mlkit sweep --trials {o.get('sweep_trials')} --cv {o.get('sweep_cv')} --no-promote` per table (stopped after "
                  f"{o.get('sweep_timeout'):g} s; no new trial after half of it): the best cross-validated value of the primary metric "
                  "(mean over the folds of the training rows) against trial 0, the default parameters."
                  + (" Refit: the best parameters trained by `mlkit train --params best.json`, scored on the run's test rows." if o.get('sweep_refit') else ''), '',
                  '| table | metric | trial 0 (defaults) | best (trial) | gain | trials (complete / pruned / failed) | s per trial | s |'
                  + (' refit test accuracy / RMSE (default) |' if o.get('sweep_refit') else ''),
                  '|---|---|---|---|---|---|---|---|' + ('---|' if o.get('sweep_refit') else '')]
        for r in sw:
            w = r['sweep']
            if w.get('error'):
                lines.append(f"| {r['table']} | **{w['error']}** | | | | | | {w['seconds']:.0f} |" + (' |' if o.get('sweep_refit') else '')); continue
            k = w['metric']
            line = (f"| {r['table']} | {k} | {_fmt(w['default_value'], k)} ± {_fmt(w['default_std'], k)} | "
                    f"{_fmt(w['best_value'], k)} ± {_fmt(w['best_std'], k)} ({w['best_trial']}) | {_fmt(w['gain'], k)} | "
                    f"{w['trials']} ({w['complete']} / {w['pruned']} / {w['failed']}) | {w['seconds_per_trial'] or 0:.1f} | {w['seconds']:.0f} |")
            if o.get('sweep_refit'):
                f = w.get('refit') or {}; key = 'rmse' if r['task'] == 'regression' else 'accuracy'
                line += f" {_fmt(f.get(key), key)} ({_fmt((r.get('baseline_check') or {}).get('model'), key)}) |"
            lines.append(line)
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
    ap.add_argument('--sweep-trials', type=int, default=0, help='a small `mlkit sweep` per table with N trials (default 0: none)')
    ap.add_argument('--sweep-cv', type=int, default=2, help="the sweeps' folds (default 2)")
    ap.add_argument('--sweep-timeout', type=float, default=600, help='seconds per sweep (default 600; no new trial after half)')
    ap.add_argument('--sweep-refit', action='store_true', help="train each sweep's best and report its test metric (a full train run per table)")
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
                     metrics={}, baselines={}, seconds=0.0, log='-', note=C.TABLES[n].note, baseline_check=None, sweep=None)
        rows.append(r)
        keys = PRIMARY.get(r['task'] or r['expected_task'], ())
        mets = '  '.join(f"{k} {_metric_cell(r, k)}" for k in keys)
        print(f"[{i}/{len(names)}] {n}: exit {r['exit_code']}, {r['status']}, task {r['task']} (expected {r['expected_task']}), "
              f"promoted {r['promoted']}, failed gates {r['failed_gates'] or '-'}; {mets}; {r['seconds']:.0f}s", flush=True)
        c = r.get('baseline_check') or {}
        if c.get('baseline'): print(f"    default vs best classical: {c['metric']} {_fmt(c['model'], c['metric'])} vs {_fmt(c['baseline_value'], c['metric'])} "
                                    f"({c['baseline']}): met {c['met']}", flush=True)
        w = r.get('sweep')
        if w: print(f"    sweep: " + (w['error'] if w.get('error') else f"{w['metric']} best {_fmt(w['best_value'], w['metric'])} (trial {w['best_trial']}) vs trial 0 "
                                        f"{_fmt(w['default_value'], w['metric'])}, {w['trials']} trials") + f", {w['seconds']:.0f}s", flush=True)
        if not r['ok'] and r.get('error'): print(f"    error: {str(r['error']).strip().splitlines()[-1][:300]}  (log {r.get('log')})", flush=True)
    passed = sum(r['ok'] for r in rows)
    res = dict(benchmark='corpus', finished_at=common.now(), command=command, folder=str(folder), git_commit=_git_commit(),
               options=dict(tables=names, max_rows=a.max_rows, epochs=a.epochs, simulate_rows=a.simulate_rows,
                            timeout=a.timeout, fmt=a.fmt, seed=a.seed, params=a.param, no_build=a.no_build, sweep_trials=a.sweep_trials,
                            sweep_cv=a.sweep_cv, sweep_timeout=a.sweep_timeout, sweep_refit=a.sweep_refit),
               passed=passed, failed=[r['table'] for r in rows if not r['ok']], seconds=round(time.perf_counter() - t_all, 1),
               machine=common.machine(), tables=rows)
    # rows in bench/common.py's {metric, value, goal, met} form, so the shared summary table can show the corpus too
    res['table'] = [dict(metric=f"corpus {r['table']} ({r['rows']:,} rows, {r['task'] or r['expected_task']})",
                         value=f"{r['status']}, promoted {_fmt(r['promoted'])}; " + '; '.join(
                             f"{k} {_metric_cell(r, k)}" for k in PRIMARY.get(r['task'] or r['expected_task'], ())),
                         goal='succeeded', met=r['ok']) for r in rows]
    for r in rows:
        c = r.get('baseline_check') or {}
        if c.get('baseline'):
            res['table'].append(dict(metric=f"corpus {r['table']}: default vs best classical baseline ({c['metric']})",
                                     value=f"{_fmt(c['model'], c['metric'])} vs {_fmt(c['baseline_value'], c['metric'])} ({c['baseline']})",
                                     goal='accuracy within 0.5 points' if c['metric'] == 'accuracy' else 'RMSE within 2%', met=c['met']))
        w = r.get('sweep')
        if w: res['table'].append(dict(metric=f"corpus {r['table']}: sweep best CV {w.get('metric', '')} vs trial 0 (defaults)",
                                       value=w['error'] if w.get('error') else f"{_fmt(w['best_value'], w['metric'])} vs {_fmt(w['default_value'], w['metric'])} ({w['trials']} trials, {w['seconds']:.0f} s)"))
    checks = [r['baseline_check']['met'] for r in rows if (r.get('baseline_check') or {}).get('met') is not None]
    res["baseline_check_met"] = f"{sum(checks)}/{len(checks)}"
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
