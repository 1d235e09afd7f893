"The closed loop: retrain pass/reject, --if-drift, crashes promote nothing, canary auto-rollback, lineage, locks, mlkit run."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd, run_mlkit
from mlkit.data import load_adult, ADULT_TARGET

SMALL = ['-p', 'limit_rows', '4000', '-p', 'max_epochs', '8']
# gates loose enough that a small candidate passes every one: the tests below pin the flow, not a model's quality
LOOSE = {'MLKIT_MAX_FAIRNESS_GAP': '1', 'MLKIT_GATE_BASELINE_TOLERANCE': '1', 'MLKIT_GATE_MIN_SKILL': '-10', 'MLKIT_MAX_ECE': '1',
         'MLKIT_GATE_ACCURACY_TOLERANCE': '1', 'MLKIT_GATE_AUC_TOLERANCE': '1'}

def sh(*args, env=None, timeout=900):
    e = {**os.environ, **(env or {})}; e.pop('BENTOML_HOME', None)
    return subprocess.run(mlkit_cmd(*args), capture_output=True, text=True, env=e, timeout=timeout)

@pytest.fixture(scope='module')
def loop_home(tmp_path_factory):
    """A home with a weak production model (1 epoch on 1,500 rows) registered through a real training run on 4,000 rows
    of Adult's training file: a retrain joins those rows (its production's training data) to the new ones."""
    h = tmp_path_factory.mktemp('loop')
    env = {'MLKIT_HOME': str(h/'home'), 'MLKIT_REPORTS': str(h/'reports'), 'WANDB_MODE': 'disabled'}
    data = h/'adult_4k.csv'; load_adult('train').sample(4000, random_state=0).to_csv(data, index=False)
    r = sh('train', '--data', data, '--target', ADULT_TARGET, '--sensitive', 'sex', 'race', '-p', 'limit_rows', '1500', '-p', 'max_epochs', '1', env=env)
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

def test_retrain_if_drift_passes_gates_sets_candidate(env, loop_home, tmp_path):
    "New data of people over 50: --if-drift finds the drift, retrains, every gate of production's passes; the candidate alias moves, production stays."
    from mlkit.registry import alias_target
    prod = alias_target('production')
    te = load_adult('test')
    p = tmp_path/'old.csv'; te[te.age > 50].to_csv(p, index=False)
    # the gates under test here are production's; a small network may trail gradient boosting on the same 4,000 rows
    r = sh('retrain', '--if-drift', '--data', p, *SMALL,
           env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '0.6', 'MLKIT_GATE_BASELINE_TOLERANCE': '0.05', 'MLKIT_MIN_ACCURACY': '0.5'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(env)
    assert s['monitor']['breaches'], s['monitor']
    assert s['status'] == 'candidate' and all(g['passed'] for g in s['gates']) and len(s['gates']) >= 6, s['gates']
    assert alias_target('candidate') == s['candidate'] and alias_target('production') == prod   # production untouched
    assert s['metrics']['candidate']['accuracy'] >= s['metrics']['production']['accuracy'] - 0.005

def test_retrain_on_shuffled_labels_is_rejected(env, tmp_path):
    from mlkit.registry import alias_target, history
    before = (alias_target('candidate'), alias_target('production'), len(history('candidate')))
    # label-corrupted new data, outnumbering production's 3,200 training rows: 8,000 training rows with every label
    # flipped, plus 2,000 test rows with shuffled labels
    train = load_adult('train').sample(8000, random_state=1)
    train[ADULT_TARGET] = np.where(train[ADULT_TARGET] == '>50K', '<=50K', '>50K')
    big = load_adult('test').sample(2000, random_state=2).reset_index(drop=True)
    big[ADULT_TARGET] = big[ADULT_TARGET].sample(frac=1, random_state=3).to_numpy()
    p = tmp_path/'noise.csv'; pd.concat([train, big]).to_csv(p, index=False)
    r = sh('retrain', '--data', p, '-p', 'max_epochs', '2', env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '0.6'})
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(env)
    assert s['status'] == 'rejected'
    failed = {g['gate'] for g in s['gates'] if not g['passed']}
    # valid data with wrong labels: no skill over the trivial model, worse than production on its held-out rows
    assert {'vs_trivial', 'vs_production:accuracy', 'vs_production:roc_auc'} <= failed and 'data_validation' not in failed, s['gates']
    assert 'FAIL' in r.stdout
    assert (alias_target('candidate'), alias_target('production'), len(history('candidate'))) == before

def test_if_drift_without_drift_skips(env, tmp_path):
    r = sh('retrain', '--if-drift', '--data', new_data(tmp_path, 3000, seed=9), *SMALL,
           env={**env, 'MLKIT_MAX_FAIRNESS_GAP': '1', 'MLKIT_MIN_ACCURACY': '0.5'})
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'no retrain needed' in r.stdout
    s = latest_summary(env); assert s['status'] == 'skipped' and s['monitor']['breaches'] == []

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
    from mlkit.runs import run_lock
    with run_lock('retrain'): pass     # the crashed run's lock died with it

def test_concurrent_retrain_refused(env, tmp_path):
    from mlkit.runs import run_lock
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
    # gates opened wide, so this small model is promoted and the request lineage below is always checked
    env = {'MLKIT_HOME': str(tmp_path/'h'), 'MLKIT_REPORTS': str(tmp_path/'r'), 'WANDB_MODE': 'offline', 'MLKIT_MAX_ECE': '1',
           'MLKIT_GATE_BASELINE_TOLERANCE': '1', 'MLKIT_GATE_MIN_SKILL': '-1', 'MLKIT_MAX_FAIRNESS_GAP': '1'}
    r = sh('run', '-p', 'limit_rows', '5000', '-p', 'max_epochs', '3', '--simulate-rows', '300', env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in ('[1/7] validate data', '[2/7] train', '[4/7] build bento', '[5/7] score', '[6/7] monitor', 'epoch 1/3'): assert stage in r.stdout
    s = json.loads(next((tmp_path/'r'/'runs').glob('run-*/summary.json')).read_text())
    assert s['status'] == 'succeeded' and s['model_tag'] and s['bento'].startswith('mlkit:')
    assert s['traffic']['requests'] == 300 and s['traffic']['non_200'] == 0
    assert 'age' in s['monitor']['drifted'] and s['monitor']['quality'] is not None
    assert Path(s['reports']['drift_html']).exists() and Path(s['reports']['fairness_html']).exists()
    assert s['promoted'], s['gates']
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
    r = sh('retrain', '--data', p, '--target', 'y', '--task', 'regression', '-p', 'max_epochs', '1', env=LOOSE)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = latest_summary(os.environ)
    assert s['status'] == 'candidate' and s['validation']['valid'] and s['candidate'] and s['metrics']['candidate']['rmse'] is not None, s

# --- the canary as an A/B test: stand-in models (no network is loaded), a synthetic prediction log, no server ---

def _stand_in_model(d):
    d.mkdir(parents=True, exist_ok=True)
    (d/'weights.safetensors').write_bytes(b'0'); (d/'transform.json').write_text('{}')
    (d/'net.json').write_text(json.dumps(dict(config=dict(network='mlp'), threshold=0.5)))
    return d

def canary_log(tmp_path, n, lift, seed=0, cand_share=0.5, base=0.10, copies=1, arm_column=True):
    """Production and candidate aliases, a prediction log of `n` units (each with `copies` requests) split `cand_share`
    to the candidate, and an outcomes CSV keyed by user_id with `converted` at rate `base` (+ `lift` on the candidate)."""
    from mlkit.registry import register, promote
    from mlkit.predlog import PredictionLog
    from datetime import datetime, timezone
    ptag, ctag = (register(_stand_in_model(tmp_path/f'model{i}'), 'ab', dict(target='y', task='binary')) for i in (0, 1))
    promote(ptag, 'production', reason='start'); promote(ctag, 'candidate', reason='canary')
    g = np.random.default_rng(seed)
    cand = g.random(n) < cand_share
    converted = (g.random(n) < base + lift * cand).astype(int)
    score, lat = g.random(n), 5 + g.random(n)
    recs = []
    for k in range(copies):        # copy k of every unit arrives after copy k - 1 of all units
        for i, c in enumerate(cand):
            r = dict(ts=datetime.now(timezone.utc).isoformat(), request_id=f'r{i}-{k}', model=ctag if c else ptag,
                     inputs=dict(x=1.0, user_id=f'u{i}'), label='a', score=float(score[i]), latency_ms=float(lat[i]))
            if arm_column: r.update(arm='candidate' if c else 'production', unit=f'u{i}')
            recs.append(r)
    log = PredictionLog(); log.append(recs); log.close()
    f = tmp_path/'outcomes.csv'
    pd.DataFrame(dict(user_id=[f'u{i}' for i in range(n)], converted=converted)).to_csv(f, index=False)
    return ptag, ctag, f

AB_ENV = {'MLKIT_CANARY_SHARE': '0.5', 'MLKIT_AB_UNIT': 'user_id'}

def test_canary_ab_known_lift_at_planned_size_promotes(tmp_path):
    "+0.05 on a 0.10 conversion at the size `mlkit ab plan` gives: candidate better, decision promote, promote succeeds."
    from mlkit.registry import alias_target, history
    r = run_mlkit('ab', 'plan', '--baseline', '0.1', '--mde', '0.05', '--share', '0.5', '--json')
    assert r.returncode == 0, r.stderr
    n = json.loads(r.stdout)['n_total']
    ptag, ctag, f = canary_log(tmp_path, n, 0.05)
    r = run_mlkit('canary', 'report', '--outcomes', f, '--json', env=AB_ENV)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    m = rep['metrics']['converted']
    print(f"n={n} converted delta={m['delta']:.4f} ci={m['ci']} p={m['p_value']:.3g} {m['decision']}; decision {rep['decision']}")
    assert m['decision'] == 'candidate better' and m['p_value'] < 0.05 and m['ci'][0] > 0
    assert rep['decision'] == 'promote' and rep['decision_metric'] == 'converted' and not rep['srm']['mismatch']
    assert rep['plan']['n_total'] == n and 'mSPRT' in rep['method'] and 'daily' in rep['method']
    for k in ('candidate_tag', 'production_tag', 'since', 'score_drift', 'production', 'candidate', 'verdict', 'breaches'): assert k in rep
    r = run_mlkit('canary', 'report', '--outcomes', f, env=AB_ENV)
    assert 'converted' in r.stdout and 'candidate better' in r.stdout and 'SRM: ok' in r.stdout and 'decision: promote' in r.stdout, r.stdout
    r = run_mlkit('canary', 'promote', '--outcomes', f, env=AB_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert alias_target('production') == ctag and alias_target('candidate') is None
    assert history('production')[-1]['reason'].startswith('canary A/B') and 'p=' in history('production')[-1]['reason']

def test_canary_ab_no_lift_refuses_then_forced_with_reason(tmp_path):
    "No lift: decision continue, promote refused (exit 1); --force needs --reason; the forced reason is in the alias history."
    from mlkit.registry import alias_target, history
    ptag, ctag, f = canary_log(tmp_path, 2621, 0.0, seed=1)
    r = run_mlkit('canary', 'report', '--outcomes', f, '--json', env=AB_ENV)
    rep = json.loads(r.stdout); m = rep['metrics']['converted']
    print(f"converted delta={m['delta']:.4f} ci={m['ci']} p={m['p_value']:.3g} {m['decision']}; decision {rep['decision']}")
    assert m['decision'] == 'no significant difference' and m['p_value'] >= 0.05 and rep['decision'] == 'continue'
    r = run_mlkit('canary', 'promote', '--outcomes', f, env=AB_ENV)
    assert r.returncode == 1 and 'converted' in r.stderr and 'p=' in r.stderr and 'decision continue' in r.stderr, r.stderr
    assert alias_target('production') == ptag
    r = run_mlkit('canary', 'promote', '--outcomes', f, '--force', env=AB_ENV)
    assert r.returncode == 2 and '--reason' in r.stderr, r.stderr
    r = run_mlkit('canary', 'promote', '--outcomes', f, '--force', '--reason', 'legal requires the new model', env=AB_ENV)
    assert r.returncode == 0, r.stderr
    why = history('production')[-1]['reason']
    assert alias_target('production') == ctag and why.startswith('forced: legal requires the new model') and f"p={m['p_value']:.3g}" in why, why

def test_canary_srm_detected_at_70_30(tmp_path):
    "Arms split 70/30 against a configured share of 0.5 is a sample-ratio mismatch: no promotion, even with a lift."
    from mlkit.canary import canary_report
    from mlkit.config import load_settings
    canary_log(tmp_path, 2000, 0.10, cand_share=0.3)
    rep = canary_report(settings=load_settings(canary_share=0.5, ab_unit='user_id'), outcomes=tmp_path/'outcomes.csv')
    print(f"srm p={rep['srm']['p_value']:.3g} observed={rep['srm']['observed']}; converted {rep['metrics']['converted']['decision']}")
    assert rep['srm']['mismatch'] and rep['srm']['p_value'] < 1e-6
    assert rep['decision'] == 'continue' and 'sample-ratio mismatch' in rep['reason']
    rep = canary_report(settings=load_settings(canary_share=0.3, ab_unit='user_id'), outcomes=tmp_path/'outcomes.csv')
    assert not rep['srm']['mismatch'] and rep['decision'] == 'promote'       # the same split is fine when 0.3 was planned

def test_canary_units_not_rows(tmp_path, monkeypatch):
    "Ten requests per unit test like one: the p-value is the per-unit one, not a row-level one ten times too confident."
    from mlkit.canary import canary_report
    from mlkit.config import load_settings
    from mlkit.stats import ab_test
    s = load_settings(canary_share=0.5, ab_unit='user_id')
    canary_log(tmp_path/'one', 1500, 0.03, seed=2)
    p1 = canary_report(settings=s, outcomes=tmp_path/'one'/'outcomes.csv')['metrics']['converted']
    (tmp_path/'ten').mkdir()
    monkeypatch.setenv('MLKIT_HOME', str(tmp_path/'ten'/'home')); monkeypatch.setenv('BENTOML_HOME', str(tmp_path/'ten'/'home'/'bentoml'))
    canary_log(tmp_path/'ten', 1500, 0.03, seed=2, copies=10)
    rep = canary_report(settings=s, outcomes=tmp_path/'ten'/'outcomes.csv')
    p10 = rep['metrics']['converted']
    oc = pd.read_csv(tmp_path/'ten'/'outcomes.csv')
    from mlkit.predlog import read_prediction_log
    log = read_prediction_log().merge(oc, on='user_id')
    naive = ab_test(log['converted'], log['arm'] == 'candidate')['p_value']      # rows as if independent
    print(f"units: p={p1['p_value']:.4g} ({p1['units']}); 10 copies: p={p10['p_value']:.4g} ({p10['units']}); rows: p={naive:.3g}")
    assert p10['units'] == p1['units'] and sum(rep['units'].values()) == 1500
    assert abs(p10['p_value'] - p1['p_value']) < 0.01 and abs(p10['delta'] - p1['delta']) < 1e-12
    assert naive < p1['p_value'] / 10

def test_canary_old_log_and_bad_outcomes(tmp_path):
    "A log without arm/unit columns falls back to the answering model and the request id; a bad outcomes file is one clear error."
    from mlkit.canary import canary_report
    from mlkit.config import load_settings
    from mlkit.registry import register, promote
    s = load_settings(canary_share=0.5)
    ptag, ctag = (register(_stand_in_model(tmp_path/f'm{i}'), 'ab', dict(target='y', task='binary')) for i in (0, 1))
    promote(ptag, 'production'); promote(ctag, 'candidate')
    rep = canary_report(settings=s)                    # nothing logged yet
    assert rep['verdict'] == 'insufficient data' and rep['decision'] == 'continue' and rep['srm'] is None
    canary_log(tmp_path, 1200, 0.0, seed=3, arm_column=False)
    oc = pd.read_csv(tmp_path/'outcomes.csv').assign(request_id=lambda d: d.user_id.str[1:].radd('r') + '-0').drop(columns='user_id')
    rep = canary_report(settings=s, outcomes=oc)
    assert rep['unit'] == 'request_id' and sum(rep['units'].values()) == 1200 and rep['metrics']['converted']['decision'] == 'no significant difference'
    oc.assign(request_id='nope').to_csv(tmp_path/'bad.csv', index=False)
    r = run_mlkit('canary', 'report', '--outcomes', tmp_path/'bad.csv', env=AB_ENV)
    assert r.returncode == 1 and 'matches' in r.stderr and 'has converted, request_id' in r.stderr, r.stderr
    oc.rename(columns=dict(request_id='customer')).to_csv(tmp_path/'nokey.csv', index=False)
    r = run_mlkit('canary', 'report', '--outcomes', tmp_path/'nokey.csv', env=AB_ENV)
    assert r.returncode == 1 and "'user_id'" in r.stderr and 'has converted, customer' in r.stderr, r.stderr
