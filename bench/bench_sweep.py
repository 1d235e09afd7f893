"""Sweep benchmark: `mlkit sweep` on the bundled Adult data through the CLI, with a bounded budget.

Runs `.venv/bin/mlkit sweep --trials 8 --cv 2 --timeout 900 --no-promote --study bench-adult` as a subprocess (its own
process group; stopped after `--hard-timeout` seconds, 1,500 by default: then best.json is written from the study's journal) with MLKIT_HOME / MLKIT_REPORTS / BENTOML_HOME in a temporary
folder and WANDB_MODE=disabled (`common.isolate`). Trial 0 of every sweep is the default parameters, so the best is
never worse than the defaults by the sweep's own measure (the mean over the folds of the training rows).

Writes reports/bench/sweep.json (and bench/results/sweep.json): every trial (state, cross-validated value and its
spread over the folds, epochs, seconds, parameters), trial 0's value against the best, seconds per trial; and copies
the sweep's best.json to bench/results/sweep_adult_best.json, which bench_training.py refits on the whole training
file for its side-by-side table. With `--limit-rows` or `--max-epochs` (smoke runs) best.json is NOT copied: its
parameters would fix those values.

    .venv/bin/python bench/bench_sweep.py [--trials 8] [--cv 2] [--timeout 900] [--hard-timeout 1500]
                                          [--limit-rows N --max-epochs E]   # smoke run only
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, threading, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
TMP = common.isolate()

STUDY = 'bench-adult'
BEST_KEPT = common.KEEP/'sweep_adult_best.json'

def run_cli(argv, log: Path, timeout: float) -> tuple:
    "Run `argv` in its own session, streaming its output to stdout and `log`; (exit code or 'timeout', seconds)."
    t0 = time.perf_counter()
    with open(log, 'w') as f:
        f.write('$ ' + ' '.join(argv) + '\n'); f.flush()
        p = subprocess.Popen(argv, cwd=common.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors='replace', start_new_session=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
        def pump():
            for line in p.stdout:
                f.write(line); f.flush(); print('  | ' + line, end='', flush=True)
        th = threading.Thread(target=pump, daemon=True); th.start()
        try: rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            common.stop(p, timeout=15); rc = 'timeout'
        th.join(10)
    return rc, time.perf_counter() - t0

def _r(v, n=5):
    try: return None if v is None or v != v else round(float(v), n)
    except (TypeError, ValueError): return None

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--trials', type=int, default=8)
    ap.add_argument('--cv', type=int, default=2)
    ap.add_argument('--timeout', type=float, default=900, help="mlkit sweep --timeout: no new trial after S seconds")
    ap.add_argument('--hard-timeout', type=float, default=1500, help='stop the sweep process after S seconds')
    ap.add_argument('--limit-rows', type=int, help='smoke run: -p limit_rows N (best.json is then not kept)')
    ap.add_argument('--max-epochs', type=int, help='smoke run: -p max_epochs E (best.json is then not kept)')
    a = ap.parse_args()
    argv = [str(common.VENV_BIN/'mlkit'), 'sweep', '--trials', str(a.trials), '--cv', str(a.cv), '--timeout', f'{a.timeout:g}',
            '--no-promote', '--study', STUDY]
    smoke = bool(a.limit_rows or a.max_epochs)
    if a.limit_rows: argv += ['-p', 'limit_rows', str(a.limit_rows)]
    if a.max_epochs: argv += ['-p', 'max_epochs', str(a.max_epochs)]
    load = os.getloadavg()
    print(f"load average before the sweep: {load}\n$ {' '.join(argv[1:])}", flush=True)
    log, notes = TMP/'sweep.log', []
    rc, secs = run_cli(argv, log, a.hard_timeout)
    sdir = Path(os.environ['MLKIT_REPORTS'])/'sweeps'/STUDY
    res = dict(command='mlkit ' + ' '.join(argv[2:]), exit_code=rc, seconds=round(secs, 1), load_1m_before=round(load[0], 2),
               params=dict(trials=a.trials, cv=a.cv, timeout_s=a.timeout, hard_timeout_s=a.hard_timeout, limit_rows=a.limit_rows,
                           max_epochs=a.max_epochs, study=STUDY, data='bundled Adult training file (32,561 rows)', smoke=smoke))
    table = [dict(metric='mlkit sweep (CLI) exit code, wall time', value=f"{rc}, {secs:.0f} s", goal='0', met=rc == 0)]
    if not (sdir/'best.json').exists() and (sdir/'journal.log').exists():
        # stopped (hard timeout) before the notebook wrote its results: write them from the study's journal, whose
        # complete trials survive; the trial that was running is marked failed (its process has ended)
        try:
            from mlkit.sweep import read_spec, load_study, fail_stale_trials, write_results
            spec = read_spec(STUDY); fail_stale_trials(load_study(spec)); write_results(spec)
            notes.append(f"The sweep was stopped after {a.hard_timeout:g} s (exit {rc}); best.json and trials.parquet were written "
                         "afterwards from the study's journal (complete trials only; the running one is marked failed).")
        except Exception as e: notes.append(f"no results could be recovered from the journal: {type(e).__name__}: {e}")
    best = json.loads((sdir/'best.json').read_text()) if (sdir/'best.json').exists() else None
    summ = json.loads((sdir/'summary.json').read_text()) if (sdir/'summary.json').exists() else {}
    res['durations'] = summ.get('durations')
    trials = []
    if (sdir/'trials.parquet').exists():
        import pandas as pd
        fr = pd.read_parquet(sdir/'trials.parquet')
        for _, t in fr.sort_values('number').iterrows():
            trials.append(dict(number=int(t['number']), state=t['state'], value=_r(t.get('value')), std=_r(t.get('std')),
                               folds=[_r(x) for x in t['folds']] if t.get('folds') is not None else None,
                               epochs=[int(x) for x in t['epochs']] if t.get('epochs') is not None else None,
                               seconds=_r(t.get('seconds'), 1), error=t.get('error') if isinstance(t.get('error'), str) else None,
                               params={k[7:]: (v.item() if hasattr(v, 'item') else v) for k, v in t.items() if k.startswith('params_')}))
    res['trials'] = trials
    if best:
        res['best'] = best
        metric = best.get('metric')
        t0 = next((t for t in trials if t['number'] == 0), None)
        done = [t for t in trials if t['state'] == 'COMPLETE']
        states = {s: sum(t['state'] == s for t in trials) for s in ('COMPLETE', 'PRUNED', 'FAIL')}
        secs_t = [t['seconds'] for t in trials if t['seconds'] is not None]
        res['seconds_per_trial'] = common.stats(secs_t, 1)
        res['seconds_per_complete_trial'] = common.stats([t['seconds'] for t in done if t['seconds'] is not None], 1)
        table += [dict(metric='trials: finished (complete / pruned / failed)',
                       value=f"{len(trials)} ({states['COMPLETE']} / {states['PRUNED']} / {states['FAIL']}); {a.cv}-fold CV of the training rows, "
                             f"--trials {a.trials}, --timeout {a.timeout:g} s"),
                  dict(metric='seconds per trial (all / complete)', value=f"{common.spread(res['seconds_per_trial'], '{:.0f}')} / "
                                                                          f"{common.spread(res['seconds_per_complete_trial'], '{:.0f}')}")]
        if t0 and t0['value'] is not None:
            res['default_trial0'] = dict(value=t0['value'], std=t0['std'], seconds=t0['seconds'], folds=t0['folds'], epochs=t0['epochs'])
            table.append(dict(metric=f"trial 0 (the defaults): CV {metric}", value=f"{t0['value']:.4f} ± {t0['std'] or 0:.4f} ({t0['seconds']:.0f} s, epochs {t0['epochs']})"))
        higher = best.get('direction', 'maximize') == 'maximize'
        gain = (_r(best['value']) - t0['value']) * (1 if higher else -1) if t0 and t0['value'] is not None else None
        gain = None if gain is None else round(gain, 5) + 0.0
        res['best_minus_default'] = _r(gain)
        table.append(dict(metric=f"best: trial {best['trial']}, CV {metric}",
                          value=f"{best['value']:.4f} ± {best.get('std') or 0:.4f}" + (f" ({gain:+.4f} vs the defaults)" if gain is not None else ''),
                          goal='>= trial 0 (by construction)', met=gain is None or gain >= 0))
        changed = {k: v for k, v in best['params'].items() if k in (trials[0]['params'] if trials else {})}
        table.append(dict(metric='best parameters (searched ones)', value=', '.join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in changed.items())))
        if best.get('importance'):
            table.append(dict(metric='parameter importance (fANOVA)', value=', '.join(f"{k} {v:.2f}" for k, v in best['importance'].items())))
        keep = common.OUT/'sweep_files'; keep.mkdir(parents=True, exist_ok=True)   # the sweep's own files (reports/bench/, not kept)
        for k in ('best.json', 'trials.parquet', 'history.png', 'importance.png', 'summary.json'):
            if (sdir/k).exists(): shutil.copy2(sdir/k, keep/k)
        if smoke: notes.append('Smoke run (--limit-rows / --max-epochs): best.json was not copied to bench/results/sweep_adult_best.json.')
        else:
            common.KEEP.mkdir(parents=True, exist_ok=True)
            BEST_KEPT.write_text(json.dumps(dict(best, bench=dict(command=res['command'], finished_at=common.now())), indent=1) + '\n')
            notes.append(f"best.json copied to bench/results/{BEST_KEPT.name}; bench_training.py refits its params on the whole training file.")
    else:
        table.append(dict(metric='best.json', value=f'missing (exit {rc}); log tail: ' + log.read_text(errors='replace')[-300:].replace('\n', ' '), met=False))
    notes.append(f"`mlkit sweep` through the CLI on the bundled Adult training rows, isolated MLKIT_HOME/MLKIT_REPORTS, WANDB_MODE=disabled, "
                 f"--no-promote (no refit). Trial 0 is the default parameters; the value is the mean over {a.cv} folds of the training "
                 "rows (± the standard deviation over the folds); trials after the 5th may be pruned on their first fold. "
                 f"--timeout starts no new trial after {a.timeout:g} s, so the last trial may end later. Load average (1 min) before: {load[0]:.2f}.")
    res['table'], res['notes'] = table, notes
    common.write_result('sweep', res)
    return 0 if rc == 0 else 1

if __name__ == '__main__':
    try: sys.exit(main())
    finally: common.cleanup(TMP)
