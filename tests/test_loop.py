"The closed loop: retrain pass/reject, --if-drift, crashes promote nothing, canary auto-rollback, lineage, locks, mlkit run."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, ADULT_TARGET

SMALL = ['-p', 'limit_rows', '4000', '-p', 'max_epochs', '8']

def sh(*args, env=None, timeout=900):
    e = {**os.environ, **(env or {})}; e.pop('BENTOML_HOME', None)
    return subprocess.run(mlkit_cmd(*args), capture_output=True, text=True, env=e, timeout=timeout)

@pytest.fixture(scope='module')
def loop_home(tmp_path_factory):
    "A home with a weak production model (1 epoch on 1,500 rows) registered through a real training run."
    h = tmp_path_factory.mktemp('loop')
    env = {'MLKIT_HOME': str(h/'home'), 'MLKIT_REPORTS': str(h/'reports'), 'WANDB_MODE': 'disabled'}
    r = sh('train', '-p', 'limit_rows', '1500', '-p', 'max_epochs', '1', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(next((h/'reports'/'runs').glob('*/summary.json')).read_text())
    r = sh('models', 'promote', s['model_tag'], '--reason', 'initial', env=env)
    assert r.returncode == 0
    return env, s['model_tag'], h

@pytest.fixture
def env(loop_home, monkeypatch):
    e, _, _ = loop_home
    for k, v in e.items(): monkeypatch.setenv(k, v)
    monkeypatch.delenv('BENTOML_HOME', raising=False)
    return e

def new_data(tmp_path, n=3000, shuffle=False, seed=0):
    te = load_adult('test').sample(n, random_state=seed).reset_index(drop=True)
    if shuffle: te[ADULT_TARGET] = te[ADULT_TARGET].sample(frac=1, random_state=1).to_numpy()
    p = tmp_path/('shuffled.csv' if shuffle else 'new.csv'); te.to_csv(p, index=False)
    return p

def latest_summary(env, kind='retrain'):
    runs = sorted((Path(env['MLKIT_REPORTS'])/'runs').glob(f'{kind}-*/summary.json'), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())

def test_retrain_passes_gates_sets_candidate(env, loop_home, tmp_path):
    from mlkit.registry import alias_target
    prod = alias_target('production')
    # the gates under test here are production's; a 3-epoch network may trail gradient boosting on the same 4,000 rows
    r = sh('retrain', '--data', new_data(tmp_path), *SMALL, env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '0.6', 'MLKIT_GATE_BASELINE_TOLERANCE': '0.05'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(env)
    assert s['status'] == 'candidate' and all(g['passed'] for g in s['gates']) and len(s['gates']) >= 6
    assert alias_target('candidate') == s['candidate'] and alias_target('production') == prod   # production untouched
    assert s['metrics']['candidate']['accuracy'] >= s['metrics']['production']['accuracy'] - 0.005

def test_retrain_on_shuffled_labels_is_rejected(env, tmp_path):
    from mlkit.registry import alias_target, history
    before = (alias_target('candidate'), alias_target('production'), len(history('candidate')))
    # label-corrupted new data: the training file again with every label flipped, plus shuffled test rows
    train = load_adult('train')
    train[ADULT_TARGET] = np.where(train[ADULT_TARGET] == '>50K', '<=50K', '>50K')
    big = load_adult('test').sample(8000, random_state=2).reset_index(drop=True)
    big[ADULT_TARGET] = big[ADULT_TARGET].sample(frac=1, random_state=3).to_numpy()
    p = tmp_path/'noise.csv'; pd.concat([train, big]).to_csv(p, index=False)
    r = sh('retrain', '--data', p, '-p', 'max_epochs', '2', env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '0.6'})
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(env)
    assert s['status'] == 'rejected'
    failed = {g['gate'] for g in s['gates'] if not g['passed']}
    assert {'min_accuracy', 'vs_production:accuracy'} & failed or 'probe' in failed, s['gates']
    assert 'FAIL' in r.stdout
    assert (alias_target('candidate'), alias_target('production'), len(history('candidate'))) == before

def test_if_drift_without_drift_skips(env, tmp_path):
    r = sh('retrain', '--if-drift', '--data', new_data(tmp_path, 3000, seed=9), *SMALL,
           env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '1', 'MLKIT_MIN_ACCURACY': '0.5'})
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'no retrain needed' in r.stdout
    s = latest_summary(env); assert s['status'] == 'skipped' and s['monitor']['breaches'] == []

def test_if_drift_with_drift_retrains(env, tmp_path):
    te = load_adult('test')
    p = tmp_path/'old.csv'; te[te.age > 50].to_csv(p, index=False)
    r = sh('retrain', '--if-drift', '--data', p, *SMALL, env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '1', 'MLKIT_MIN_ACCURACY': '0.5'})
    assert r.returncode in (0, 3), r.stderr[-3000:]
    s = latest_summary(env)
    assert s['status'] in ('candidate', 'rejected') and s['monitor']['breaches'] and s['candidate']

def test_crashed_retrain_promotes_nothing_and_frees_lock(env, tmp_path):
    from mlkit.registry import alias_target, history, list_models
    before = (alias_target('candidate'), alias_target('production'), len(history('candidate')), len(history('production')))
    e = {**os.environ}; e.pop('BENTOML_HOME', None)
    p = subprocess.Popen(mlkit_cmd('retrain', '--data', new_data(tmp_path, seed=12), *SMALL), env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    # kill it mid-training: wait for the first epoch line
    deadline = time.time() + 300
    for line in p.stdout:
        if 'epoch 1/' in line or time.time() > deadline: break
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert (alias_target('candidate'), alias_target('production'), len(history('candidate')), len(history('production'))) == before
    from mlkit.loop import run_lock
    with run_lock('retrain'): pass     # the crashed run's lock died with it

def test_concurrent_retrain_refused(env, tmp_path):
    from mlkit.loop import run_lock
    with run_lock('retrain'):
        r = sh('retrain', '--data', new_data(tmp_path), *SMALL)
    assert r.returncode == 75 and 'another retrain is running' in r.stderr

def test_canary_auto_rollback(env, loop_home, tmp_path):
    "A candidate whose scores differ wildly from production's is stopped automatically, with the reason recorded."
    from test_serving import start_server, stop
    from mlkit.registry import alias_target, history, register, promote
    from mlkit.data import infer_schema, ADULT_SENSITIVE
    from mlkit.train import fit, TrainParams
    from mlkit.monitoring import reference_sample
    tr = load_adult('train')
    bad = tr.sample(3000, random_state=0).copy()
    bad[ADULT_TARGET] = np.where(np.arange(len(bad)) % 10 < 9, '>50K', '<=50K')    # a model that says >50K to everyone
    s = infer_schema(bad, ADULT_TARGET, ADULT_SENSITIVE, positive_class='>50K')
    r = fit(bad, s, TrainParams(max_epochs=2), progress=False, logger=False)
    d = tmp_path/'bad'; r.predictor.save(d); s.save(d/'schema.json'); reference_sample(tr, 500).to_parquet(d/'reference.parquet')
    cand = register(d, 'adult', {'run_id': 'bad-candidate', 'target': ADULT_TARGET})
    promote(cand, 'candidate', reason='test canary')
    prod = alias_target('production')
    p, url = start_server(env['MLKIT_HOME'], MLKIT_CANARY_MODE='canary', MLKIT_CANARY_SHARE='0.5')
    recs = json.loads(load_adult('test').drop(columns=[ADULT_TARGET]).head(200).to_json(orient='records'))
    try:
        models = [httpx.post(url + '/predict', json={'rows': [x]}, timeout=30).json()['model'] for x in recs]
        assert {prod, cand} == set(models) and 40 < models.count(cand) < 160
        r = sh('canary', 'check', env={'MLKIT_CANARY_MIN_ROWS': '30'})
        assert r.returncode == 3 and 'score_drift' in r.stdout, r.stdout + r.stderr
        assert alias_target('candidate') is None and alias_target('production') == prod
        assert history('candidate')[-1]['action'] == 'canary-stop' and 'score_drift' in history('candidate')[-1]['reason']
        time.sleep(2.5)   # the service follows the alias: no more canary traffic
        models = [httpx.post(url + '/predict', json={'rows': [x]}, timeout=30).json()['model'] for x in recs[:40]]
        assert set(models) == {prod}
    finally: stop(p)

def test_lineage_of_promoted_model(env, loop_home):
    tag = loop_home[1]
    r = sh('lineage', tag, '--json')
    assert r.returncode == 0, r.stderr
    l = json.loads(r.stdout)
    assert l['model'] == tag and l['run_id'] and l['data_hash'].startswith('sha256:') and l['git_commit'] is not None
    assert any(n.endswith('train.ipynb') for n in l['notebooks']) and any(n.endswith('evaluate.ipynb') for n in l['notebooks'])
    assert l['params']['limit_rows'] == 1500 and l['evaluation']['accuracy'] > 0.5
    assert any(e['alias'] == 'production' and e['to'] == tag and e['reason'] == 'initial' for e in l['alias_history'])
    assert 'run ' in sh('lineage', tag).stdout

def test_main_job_end_to_end(tmp_path):
    env = {'MLKIT_HOME': str(tmp_path/'h'), 'MLKIT_REPORTS': str(tmp_path/'r'), 'WANDB_MODE': 'offline'}
    r = sh('run', '-p', 'limit_rows', '5000', '-p', 'max_epochs', '3', '--simulate-rows', '300', env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in ('[1/7] validate data', '[2/7] train', '[4/7] build bento', '[5/7] score', '[6/7] monitor', 'epoch 1/3'): assert stage in r.stdout
    s = json.loads(next((tmp_path/'r'/'runs').glob('run-*/summary.json')).read_text())
    assert s['status'] == 'succeeded' and s['model_tag'] and s['bento'].startswith('mlkit:')
    assert s['traffic']['requests'] == 300 and s['traffic']['non_200'] == 0
    assert 'age' in s['monitor']['drifted'] and s['monitor']['quality'] is not None
    assert Path(s['reports']['drift_html']).exists() and Path(s['reports']['fairness_html']).exists()
    if s['promoted']:
        r2 = sh('lineage', '--request-id', 'sim-000007', env=env)
        assert r2.stdout.strip() == s['model_tag']

def test_first_retrain_honours_the_data_options(tmp_path):
    "With no production model, retrain validates the new file with the options given (here --task) before training."
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = np.clip(np.round(2 * x + 5), 0, 10).astype(int)
    y[0] = 17                                                     # a value seen once: a class too small to split
    p = tmp_path/'score.csv'; pd.DataFrame(dict(x=x, z=rng.normal(size=400), y=y)).to_csv(p, index=False)
    r = sh('retrain', '--data', p, '--target', 'y', '-p', 'max_epochs', '1')
    assert r.returncode == 3 and 'new data failed validation' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    r = sh('retrain', '--data', p, '--target', 'y', '--task', 'regression', '-p', 'max_epochs', '1')
    assert r.returncode in (0, 3), r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(os.environ)
    assert s['validation']['valid'] and s['candidate'] and s['metrics']['candidate']['rmse'] is not None, s
