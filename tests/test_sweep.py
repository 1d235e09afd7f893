"`mlkit sweep` end to end: trials, results, resume after a kill, two workers, the refit, the fairness front, bad input."
import json, subprocess, time
import numpy as np, pandas as pd
import pytest
from conftest import mlkit_cmd

FIXED = ['-p', 'max_epochs', '2', '-p', 'network', 'mlp']     # small and quick: 2 epochs of one MLP

def _table(path, n=300, seed=0):
    "A binary table with a learnable signal and a sensitive column `g` that shifts a feature (so gaps vary by model)."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(dict(x1=rng.normal(size=n), x2=rng.normal(size=n), k=rng.choice(['u', 'v', 'w'], n),
                           g=rng.choice(['a', 'b'], n, p=[0.35, 0.65])))
    df['x1'] += (df.g == 'a') * 1.0
    df['y'] = np.where(df.x1 + df.x2 + 0.5 * (df.k == 'u') + rng.normal(scale=0.7, size=n) > 0.6, 'yes', 'no')
    df.to_csv(path, index=False)
    return path

def _sweep_dir(tmp_path, study): return tmp_path/'reports'/'sweeps'/study

def _states(tmp_path, study) -> dict:
    "Trial number -> (state, params, values) read from the sweep's journal (as another process would)."
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    j = _sweep_dir(tmp_path, study)/'journal.log'
    if not j.exists() or not j.stat().st_size: return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try: st = optuna.load_study(study_name=study, storage=JournalStorage(JournalFileBackend(str(j))))
    except KeyError: return {}          # the study is not created yet
    return {t.number: (t.state.name, t.params, t.values, t.user_attrs.get('worker')) for t in st.get_trials(deepcopy=False)}

def _run(*args, timeout=300, env=None):
    "`mlkit sweep ARGS` in a subprocess."
    import os
    return subprocess.run(mlkit_cmd('sweep', *args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})

def test_sweep_resumed_after_kill_then_refit(tmp_path):
    """A 3-trial sweep whose worker is killed (SIGKILL) as its second trial starts and resumed with `--study`: the study ends with
    exactly 3 finished trials, the first one kept, the killed one failed; best.json holds the best trial's parameters,
    which `mlkit train -p` / `--params` accept; the best is refit and registered, and its run names the sweep.
    (One test for all of it: each `mlkit sweep` starts a kernel and imports torch, so every run costs seconds.)"""
    data = _table(tmp_path/'fair.csv')
    import os
    first = subprocess.run(mlkit_cmd('sweep', '--data', data, '--target', 'y', '--sensitive', 'g', '--trials', 3, '--cv', 2,
                                     '--study', 's1', '--no-promote', *FIXED),
                           capture_output=True, text=True, timeout=300, env={**os.environ, 'MLKIT_SWEEP_CRASH_AT': '1'})
    assert first.returncode != 0, first.stdout[-3000:]               # its worker died as trial 1 started
    before = _states(tmp_path, 's1')
    assert [v[0] for _, v in sorted(before.items())] == ['COMPLETE', 'RUNNING'], before
    kept = {n: v for n, v in before.items() if v[0] == 'COMPLETE'}

    # the table's group g is built to differ: a gap above the default 0.25 is not what this test is about
    r = _run('--study', 's1', '--trials', 3, timeout=400, env={'MLKIT_MAX_FAIRNESS_GAP': '0.6'})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]

    sd = _sweep_dir(tmp_path, 's1')
    tf = pd.read_parquet(sd/'trials.parquet')
    assert tf.state.isin(['COMPLETE', 'PRUNED']).sum() == 3 and not (tf.state == 'RUNNING').any(), tf[['number', 'state', 'error']]
    assert (tf.state == 'COMPLETE').sum() == 3                      # 3 trials of a 2-fold, 2-epoch sweep: nothing is pruned
    for n, (_, params, values, _) in kept.items():                      # the first trials are kept as they were
        row = tf.set_index('number').loc[n]
        assert row.state == 'COMPLETE' and row.value == values[0]
        assert {k: row[f'params_{k}'] for k in params} == params
    assert {n for n, v in before.items() if v[0] == 'RUNNING'} <= set(tf.number[tf.state == 'FAIL'])   # the killed trial

    best = json.loads((sd/'best.json').read_text())
    top = tf[tf.state == 'COMPLETE'].sort_values('value', ascending=False).iloc[0]
    assert best['trial'] == top.number and best['value'] == top.value and best['std'] == top['std']
    assert best['params'] == {'max_epochs': 2, 'network': 'mlp', **{c[len('params_'):]: v.item() if hasattr(v, 'item') else v
                                                  for c, v in top.items() if c.startswith('params_')}}
    assert (best['objective'], best['study'], best['n_trials'], best['cv']) == ('auc', 's1', 3, 2)
    assert {'history.png', 'importance.png', 'sweep.ipynb', 'sweep-2.ipynb', 'journal.log'} <= {p.name for p in sd.iterdir()}

    from mlkit.cli import make_parser, _params
    from mlkit.train import TrainParams
    pairs = [x for k, v in best['params'].items() for x in ('-p', k, str(v))]
    assert TrainParams.make(**_params(make_parser().parse_args(['train', *pairs]))) == TrainParams.make(**best['params'])
    assert _params(make_parser().parse_args(['train', '--params', str(sd/'best.json')])) == best['params']

    refit = json.loads((sd/'refit.json').read_text())
    assert refit['trial'] == best['trial'] and refit['params'] == best['params'] and f"registered {refit['model_tag']}" in r.stdout, refit
    runs = list((tmp_path/'reports'/'runs').iterdir())
    assert [r.name for r in runs] == [f"s1-trial{best['trial']}"]
    s = json.loads((runs[0]/'summary.json').read_text())
    assert (s['status'], s['sweep'], s['model_tag']) == ('succeeded', 's1', refit['model_tag'])
    # the refit went through the gates like any model: all passed, and as the first model it is production
    from mlkit.registry import alias_target
    assert s['promoted'] and s['alias'] == 'production' and all(g['passed'] for g in s['gates']) and len(s['gates']) >= 6, s['gates']
    assert alias_target('production') == refit['model_tag'] and f"{refit['model_tag']}: production: all" in r.stdout
    from mlkit.registry import card
    sw = card(refit['model_tag'])['sweep']                            # the model's card names the sweep that chose it
    assert (sw['sweep'], sw['trial'], sw['value'], sw['objective']) == ('s1', best['trial'], best['value'], 'auc'), sw
    assert {k: s['params'][k] for k in best['params']} == best['params']

    r = _run('--study', 's1', '--cv', 5)                             # a study keeps its settings
    assert r.returncode == 2 and 'was started with cv 2, not 5' in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr

def test_fairness_sweep_has_a_pareto_front(tmp_path):
    """Quality against the largest fairness gap: a front of several trials, the chosen point by the documented rule.
    In this process, as the sweep notebook's cells run it (the command line's path is the test above)."""
    import io
    from mlkit.data import load_for_run, data_hash
    from mlkit.sweep import choose_pareto, open_sweep, run_trials, write_results
    data = str(_table(tmp_path/'fair.csv'))
    train, _, schema = load_for_run(data, 'y', ['g'])
    spec = open_sweep('f1', dict(data=data, target='y', sensitive=['g'], objective='fairness', cv=2,
                                     params={'max_epochs': 2, 'network': 'mlp'}),
                      schema, data_hash(train))
    assert run_trials(spec, train, schema, 4, out=io.StringIO()) == [0, 1, 2, 3]
    write_results(spec)
    sd = _sweep_dir(tmp_path, 'f1')
    best, tf = json.loads((sd/'best.json').read_text()), pd.read_parquet(sd/'trials.parquet')
    assert len(best['pareto']) > 1, best['pareto']
    assert best['trial'] == choose_pareto(best['pareto'], best['max_fairness_gap'])['trial']
    row = tf.set_index('number').loc[best['trial']]
    assert (row.value, row.gap) == (best['value'], best['gap']) and 0 <= best['gap'] <= 1
    done = tf[tf.state == 'COMPLETE']
    for p in best['pareto']:         # no complete trial is better on both objectives than a point of the front
        assert not ((done.value >= p['value']) & (done.gap <= p['gap']) & ((done.value > p['value']) | (done.gap < p['gap']))).any()
    assert (sd/'pareto.png').stat().st_size > 0 and best['rule'].startswith('best quality among Pareto points')

@pytest.mark.parametrize('args, message', [
    (['--objective', 'speed'], "unknown objective 'speed': use accuracy, auc, rmse, fairness"),
    (['--cv', '1'], '--cv must be at least 2'),
    (['--objective', 'fairness', '--target', 'y'], "objective 'fairness' needs sensitive columns"),
    (['-p', 'epochs', '3'], 'unknown training parameter(s): epochs'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    from mlkit.cli import main
    if '--target' in args: args = ['--data', str(_table(tmp_path/'t.csv')), *args]
    assert main(['sweep', *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith('mlkit: error: ') and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path/'reports'/'sweeps').exists()               # nothing was started

def test_bad_input_from_the_command_line(tmp_path):
    r = _run('--objective', 'speed')
    assert r.returncode == 2 and r.stderr.strip() == "mlkit: error: unknown objective 'speed': use accuracy, auc, rmse, fairness", r.stderr
