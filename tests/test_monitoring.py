"Monitoring: known drift flagged, same distribution not, fairness checked directly, the log after real traffic, exit codes."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE

@pytest.fixture(scope='module')
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp('mhome')
    code = ("from mlkit.data import *; from mlkit.train import *; from mlkit.registry import register, promote\n"
            "from mlkit.monitoring import reference_sample\n"
            "tr, te = load_adult(); s = infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)\n"
            "r = fit(tr.sample(4000, random_state=0), s, TrainParams(max_epochs=3), progress=False, logger=False)\n"
            f"d = {str(h / 'm')!r}; r.predictor.save(d); s.save(d + '/schema.json')\n"
            "reference_sample(tr, 4000).to_parquet(d + '/reference.parquet')\n"
            "t = register(d, 'adult', {'metrics': {'accuracy': 0.83, 'fairness': {}}}); promote(t); print(t)")
    env = {**os.environ, 'MLKIT_HOME': str(h)}; env.pop('BENTOML_HOME', None)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return h, out.stdout.strip().splitlines()[-1]

@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv('MLKIT_HOME', str(home[0])); monkeypatch.delenv('BENTOML_HOME', raising=False)
    return {**os.environ}

LOOSE = ['-t', 'max_fairness_gap', '1', '-t', 'min_accuracy', '0.5']

def run_monitor(env, *args):
    r = subprocess.run(mlkit_cmd('monitor', *args, '--json'), capture_output=True, text=True, env=env, timeout=600)
    res = json.loads(r.stdout) if r.stdout.strip().startswith('{') else None
    return r, res

def test_same_distribution_not_flagged(env, tmp_path):
    te = load_adult('test')
    p = tmp_path/'cur.csv'; te.sample(5000, random_state=3).to_csv(p, index=False)
    r, res = run_monitor(env, '--current', p, *LOOSE)
    assert r.returncode == 0, r.stderr[-2000:]
    assert res['dataset_drift'] is False and res['breaches'] == [] and not any(f['drifted'] for f in res['features'].values())
    assert {'drift_share', 'dataset_drift', 'features', 'prediction_drift', 'completeness', 'freshness', 'quality', 'fairness', 'breaches'} <= set(res)
    assert set(res['features']['age']) == {'test', 'score', 'threshold', 'drifted'}
    d = Path(res['out_dir'])
    for f in ('monitor.ipynb', 'drift.html', 'drift.json', 'fairness.html', 'fairness.json', 'monitor.json'): assert (d/f).stat().st_size > 0, f
    assert res['quality']['labelled_rows'] == 5000 and 'accuracy' in res['quality']['change']

def test_known_shift_flagged_exit_3(env, tmp_path):
    te = load_adult('test')
    shifted = te[(te.age > 45) & (te.sex == 'Male')]
    p = tmp_path/'shift.parquet'; shifted.to_parquet(p)
    r, res = run_monitor(env, '--current', p, *LOOSE)
    assert r.returncode == 3, r.stderr[-2000:]
    assert res['features']['age']['drifted'] and res['features']['sex']['drifted']
    assert {b['name'] for b in res['breaches']} & {'drift_share', 'prediction_drift'}
    b = res['breaches'][0]; assert {'name', 'threshold', 'value', 'message'} <= set(b)

def test_single_feature_shift(env, tmp_path):
    te = load_adult('test').sample(4000, random_state=5)
    p = tmp_path/'h.csv'; te.assign(hours_per_week=te.hours_per_week + 25).to_csv(p, index=False)
    r, res = run_monitor(env, '--current', p, *LOOSE)
    drifted = [c for c, f in res['features'].items() if f['drifted']]
    assert drifted == ['hours_per_week'], res['features']

def test_fairness_matches_direct_computation(env, home, tmp_path):
    te = load_adult('test').sample(3000, random_state=7).reset_index(drop=True)
    p = tmp_path/'f.csv'; te.to_csv(p, index=False)
    r, res = run_monitor(env, '--current', p, *LOOSE)
    from mlkit.registry import load_predictor
    _, pred = load_predictor(home[1])
    yp = (pred.predict(pd.read_csv(p, skipinitialspace=True, na_values=['?']))['score'] >= 0.5).astype(int)
    y = (te[ADULT_TARGET] == '>50K').astype(int).to_numpy()
    for attr in ('sex', 'race'):
        g = te[attr].to_numpy()
        groups = res['fairness'][attr]['groups']
        tprs, fprs, sels = [], [], []
        for v in np.unique(g):
            m = g == v
            sel = yp[m].mean(); sels.append(sel)
            assert groups[v]['selection_rate'] == pytest.approx(sel, abs=1e-12) and groups[v]['count'] == m.sum()
            if (y[m] == 1).any(): tprs.append(yp[m & (y == 1)].mean())
            if (y[m] == 0).any(): fprs.append(yp[m & (y == 0)].mean())
        f = res['fairness'][attr]
        assert f['demographic_parity_difference'] == pytest.approx(max(sels) - min(sels), abs=1e-12)
        assert f['equalized_odds_difference'] == pytest.approx(max(max(tprs) - min(tprs), max(fprs) - min(fprs)), abs=1e-12)

def test_sampling_stated(env, tmp_path):
    te = load_adult('test')
    p = tmp_path/'big.csv'; te.to_csv(p, index=False)
    r, res = run_monitor(env, '--current', p, '-t', 'monitor_sample_rows', '2000', *LOOSE)
    assert res['rows'] == len(te) and res['sampled_rows'] == 2000 and res['sampled'] is True

def test_exit_codes(env, tmp_path):
    r = subprocess.run(mlkit_cmd('monitor'), capture_output=True, text=True, env=env)
    assert r.returncode == 2 and '--current' in r.stderr
    r = subprocess.run(mlkit_cmd('monitor', '--current', tmp_path/'none.csv'), capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and 'not found' in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(mlkit_cmd('monitor', '--current', tmp_path/'none.csv', '-t', 'max_drift', '1'), capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and 'unknown setting' in r.stderr

def test_from_log_after_real_traffic_with_delayed_labels(env, home, tmp_path):
    from test_serving import start_server, stop
    te = load_adult('test').sample(300, random_state=11).reset_index(drop=True)
    recs = json.loads(te.drop(columns=[ADULT_TARGET]).to_json(orient='records'))
    p, url = start_server(home[0])
    try:
        ids = []
        for i in range(0, 300, 30):
            rid = f'batch-{i}'
            r = httpx.post(url + '/predict', json={'rows': recs[i:i + 30]}, headers={'X-Request-ID': rid}, timeout=30)
            assert r.status_code == 200; ids += [rid] * 30
    finally: stop(p)
    # delayed ground truth, one label per request id (here: a request's rows share the id, so label by row order)
    labels = tmp_path/'labels.csv'
    pd.DataFrame({'request_id': [f'batch-{i}' for i in range(0, 300, 30)], ADULT_TARGET: te[ADULT_TARGET].iloc[::30].tolist()}).to_csv(labels, index=False)
    r, res = run_monitor(env, '--from-log', '--labels', labels, *LOOSE)
    assert r.returncode in (0, 3), r.stderr[-2000:]
    assert res['rows'] >= 300 and res['source'] == 'log' and res['model'] == home[1]
    assert res['quality']['labelled_rows'] >= 300 and res['freshness']['age_hours'] < 1

def test_workspace_history(env, home, tmp_path):
    te = load_adult('test').sample(2000, random_state=1)
    p = tmp_path/'w.csv'; te.to_csv(p, index=False)
    run_monitor(env, '--current', p, *LOOSE)
    from evidently.ui.workspace import Workspace
    ws = Workspace(str(home[0]/'evidently'))
    proj = [x for x in ws.list_projects() if x.name == 'mlkit-adult']
    assert proj and len(ws.list_runs(proj[0].id)) >= 2
