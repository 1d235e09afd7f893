"Monitoring: known drift flagged, same distribution not, fairness checked directly, the log after real traffic, exit codes."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.metrics import headline_metrics

@pytest.fixture(scope='module')
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp('mhome')
    code = ("from mlkit.data import *; from mlkit.train import *; from mlkit.registry import register, promote\n"
            "from mlkit.monitoring import reference_sample\n"
            "tr, te = load_adult(); s = infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)\n"
            "r = fit(tr.sample(4000, random_state=0), s, TrainParams(max_epochs=3), progress=False, logger=False)\n"
            f"d = {str(h / 'm')!r}; r.predictor.save(d); s.save(d + '/schema.json')\n"
            "reference_sample(tr, 4000).to_parquet(d + '/reference.parquet')\n"
            "from mlkit.metrics import evaluate_predictions\n"     # its evaluation: the baseline of the relative quality rules
            "ho = te.sample(3000, random_state=99); m = evaluate_predictions(r.predictor.transform.encode_target(ho[ADULT_TARGET]), r.predictor.predict(ho)['score'])\n"
            "t = register(d, 'adult', {'metrics': {'accuracy': m['accuracy'], 'roc_auc': m['roc_auc'], 'fairness': {}}}); promote(t); print(t)")
    env = {**os.environ, 'MLKIT_HOME': str(h)}; env.pop('BENTOML_HOME', None)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return h, out.stdout.strip().splitlines()[-1]

@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv('MLKIT_HOME', str(home[0])); monkeypatch.delenv('BENTOML_HOME', raising=False)
    return {**os.environ}

LOOSE = ['-t', 'max_fairness_gap', '1']

# `mlkit monitor` (CLI, papermill notebook, exit codes, --json) is run by the tests that check what only it does; the rest
# call `monitoring.monitor`, the function its notebook calls, in this process

def run_monitor(env, *args):
    r = subprocess.run(mlkit_cmd('monitor', *args, '--json'), capture_output=True, text=True, env=env, timeout=600)
    res = json.loads(r.stdout) if r.stdout.strip().startswith('{') else None
    return r, res

def test_same_distribution_not_flagged(env, tmp_path):
    te = load_adult('test')
    p = tmp_path/'cur.csv'; te.sample(5000, random_state=3).to_csv(p, index=False)
    r, res = run_monitor(env, '--current', p)     # default thresholds and breach rule: noise in small groups does not page
    assert r.returncode == 0, r.stderr[-2000:]
    assert res['dataset_drift'] is False and res['breaches'] == [] and not any(f['drifted'] for f in res['features'].values())
    assert {'drift_share', 'dataset_drift', 'features', 'prediction_drift', 'completeness', 'freshness', 'quality', 'fairness', 'breaches'} <= set(res)
    assert set(res['features']['age']) == {'test', 'score', 'threshold', 'drifted'}
    d = Path(res['out_dir'])
    for f in ('monitor.ipynb', 'drift.html', 'drift.json', 'fairness.html', 'fairness.json', 'monitor.json'): assert (d/f).stat().st_size > 0, f
    assert res['quality']['labelled_rows'] == 5000 and 'accuracy' in res['quality']['change']
    a = res['attribution_drift']                  # global importance on 1,000 reference vs 1,000 current rows: reported, never a breach
    assert {'features', 'largest', 'total_shift', 'reference_rows', 'current_rows'} <= set(a) and (a['reference_rows'], a['current_rows']) == (1000, 1000)
    assert 'age' in a['features'] and 'sex' not in a['features'] and 0 <= a['total_shift'] < 0.15, a['largest']

def test_known_shift_flagged(env, tmp_path):
    "Older men only: age and sex drift, and drift breaches (exit 3 through the CLI: test_from_log_after_real_traffic_with_delayed_labels)."
    from mlkit.monitoring import monitor
    te = load_adult('test')
    shifted = te[(te.age > 45) & (te.sex == 'Male')]
    p = tmp_path/'shift.parquet'; shifted.to_parquet(p)
    res = monitor(p, workspace=False)
    assert res['features']['age']['drifted'] and res['features']['sex']['drifted']
    assert {b['name'] for b in res['breaches']} & {'drift_share', 'prediction_drift'}
    b = res['breaches'][0]; assert {'name', 'threshold', 'value', 'message'} <= set(b)

def test_single_feature_shift(env, tmp_path):
    te = load_adult('test').sample(4000, random_state=5)
    p = tmp_path/'h.csv'; te.assign(hours_per_week=te.hours_per_week + 25).to_csv(p, index=False)
    from mlkit.monitoring import monitor
    res = monitor(p, workspace=False, max_fairness_gap=1)
    drifted = [c for c, f in res['features'].items() if f['drifted']]
    assert drifted == ['hours_per_week'], res['features']

def test_fairness_matches_direct_computation(env, home, tmp_path):
    te = load_adult('test').sample(3000, random_state=7).reset_index(drop=True)
    p = tmp_path/'f.csv'; te.to_csv(p, index=False)
    from mlkit.monitoring import monitor
    res = monitor(p, workspace=False, min_group_size=0, max_fairness_gap=1)   # every group in the gaps, as computed here
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
        for k in ('demographic_parity_difference', 'equalized_odds_difference'):
            lo, hi = f[k + '_ci']; assert lo <= f[k] <= hi
        for v, gr in groups.items():
            lo, hi = gr['selection_rate_ci']; assert lo <= gr['selection_rate'] <= hi and gr['small'] is False

def old_rule_gap(fairness: dict) -> float:
    "The largest gap by the old rule: point rates over every group, small ones included."
    spread = lambda v: max(v) - min(v) if v else 0.0
    return max(spread([g[k] for g in f['groups'].values() if g.get(k) is not None])
               for f in fairness.values() for k in ('selection_rate', 'tpr', 'fpr'))

def test_same_distribution_samples_do_not_breach(env, home, tmp_path):
    "The issue's false alarm: 8 random 3,000-row samples of the test file, labels included, breach nothing under the default rule (bench_monitor_noise runs 20)."
    from mlkit.monitoring import monitor
    from mlkit.config import load_settings
    te, s = load_adult('test'), load_settings()
    found, drifted, point = [], [], 0
    for seed in range(8):
        p = tmp_path/f'c{seed}.parquet'; te.sample(3000, random_state=100 + seed).to_parquet(p)
        res = monitor(p, settings=s, workspace=False, out_dir=tmp_path/f'm{seed}')
        found += [b['name'] for b in res['breaches']]
        drifted += [c for c, f in res['features'].items() if f['drifted']] + (['prediction'] if res['prediction_drift']['drifted'] else [])
        f = res['fairness']['race']
        assert f['small_groups'] and all(f['groups'][g]['small'] and f['groups'][g]['count'] < 50 for g in f['small_groups'])
        point += old_rule_gap(res['fairness']) > s.max_fairness_gap
    assert found == [] and drifted == [], (found, drifted)    # drift is unchanged: no feature drifts on same-distribution samples
    assert point >= 2, point     # the old rule (point estimates over every group) pages on some of these samples
    shifted = te[(te.age > 45) & (te.sex == 'Male')]
    p = tmp_path/'shift.parquet'; shifted.to_parquet(p)
    assert {'drift_share', 'prediction_drift'} & {b['name'] for b in monitor(p, settings=s, workspace=False, out_dir=tmp_path/'ms')['breaches']}

def test_per_model_threshold_changes_only_that_models_verdict(env, home, tmp_path):
    "`[mlkit.models.adult]` in mlkit.toml sets adult's max_fairness_gap: `mlkit monitor` breaches for adult, not for the same weights under another name."
    from mlkit.registry import register
    from mlkit.monitoring import monitor
    h, tag = home
    other = register(h/'m', 'other')
    toml = tmp_path/'mlkit.toml'
    toml.write_text("[mlkit]\nmax_fairness_gap = 1.0\n\n[mlkit.models.adult]\nmax_fairness_gap = 0.01\nbreach_rule = 'point'\n")
    p = tmp_path/'cur.csv'; load_adult('test').sample(3000, random_state=21).to_csv(p, index=False)
    menv = {**env, 'MLKIT_SETTINGS': str(toml)}
    r1, own = run_monitor(menv, '--current', p, '--model', tag)        # the CLI resolves the model's own thresholds
    assert r1.returncode == 3, r1.stderr[-2000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MLKIT_SETTINGS', str(toml))
        oth = monitor(p, model=other, workspace=False, out_dir=tmp_path/'other')
    assert (own['thresholds']['max_fairness_gap'], own['thresholds']['breach_rule']) == (0.01, 'point')
    assert (oth['thresholds']['max_fairness_gap'], oth['thresholds']['breach_rule']) == (1.0, 'interval')
    assert own['fairness'] == oth['fairness']          # the same weights on the same rows: only the thresholds differ
    assert {b['name'] for b in own['breaches']} == {f'fairness:{a}:{k}' for a, f in own['fairness'].items()
                                                    for k in ('demographic_parity_difference', 'equalized_odds_difference') if (f[k] or 0) > 0.01}
    assert any(b['name'] == 'fairness:sex:demographic_parity_difference' for b in own['breaches']) and oth['breaches'] == []

def test_sampling_stated(env, tmp_path):
    te = load_adult('test')
    p = tmp_path/'big.csv'; te.to_csv(p, index=False)
    from mlkit.monitoring import monitor
    res = monitor(p, workspace=False, monitor_sample_rows=2000, max_fairness_gap=1)
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
    # an accuracy floor above 1: the joined labels give a live accuracy, which breaches it (exit 3) whatever the model
    r, res = run_monitor(env, '--from-log', '--labels', labels, *LOOSE, '-t', 'min_accuracy', '1.01')
    assert r.returncode == 3 and 'min_accuracy' in {b['name'] for b in res['breaches']}, r.stderr[-2000:]
    assert res['rows'] >= 300 and res['source'] == 'log' and res['model'] == home[1]
    assert res['quality']['labelled_rows'] >= 300 and res['freshness']['age_hours'] < 1

def test_workspace_history(env, home, tmp_path):
    "Each monitoring run with the workspace on adds its two snapshots (drift; fairness and quality) to the model's Evidently project."
    from mlkit.monitoring import monitor
    from evidently.ui.workspace import Workspace
    te = load_adult('test').sample(2000, random_state=1)
    p = tmp_path/'w.csv'; te.to_csv(p, index=False)
    runs = lambda: sum(len(ws.list_runs(x.id)) for ws in [Workspace(str(home[0]/'evidently'))] for x in ws.list_projects() if x.name == 'mlkit-adult')
    before = runs() if (home[0]/'evidently').exists() else 0
    for _ in range(2): monitor(p, max_fairness_gap=1)
    assert runs() == before + 2 * 2

# --- multiclass and regression, the relative quality rules ----------------------------------------------------------

@pytest.fixture(scope='module')
def mc_home(tmp_path_factory):
    from test_serving import register_colours
    h = tmp_path_factory.mktemp('mcmon')
    return h, register_colours(h)

@pytest.fixture
def mc_env(mc_home, monkeypatch):
    monkeypatch.setenv('MLKIT_HOME', str(mc_home[0])); monkeypatch.delenv('BENTOML_HOME', raising=False)
    return {**os.environ}

def test_multiclass_class_mix_drift_and_quality(mc_env, mc_home, tmp_path):
    "Same class mix: no prediction drift, quality and fairness per class; a shifted mix drifts (CLI, through the workflow)."
    from test_serving import colours, COLOURS
    from mlkit.monitoring import monitor
    p = tmp_path/'same.csv'; colours(500, seed=5).to_csv(p, index=False)
    res = monitor(p, workspace=False, max_fairness_gap=1.0)
    pdr = res['prediction_drift']
    assert res['task'] == 'multiclass' and (pdr['test'], pdr['column'], pdr['drifted']) == ('jensenshannon', 'prediction', False)
    assert set(pdr['classes']) == set(COLOURS) and abs(sum(c['current'] for c in pdr['classes'].values()) - 1) < 1e-6
    q = res['quality']
    assert q['labelled_rows'] == 500 and list(q['headline']) == headline_metrics('multiclass') and q['classes'] == COLOURS
    assert q['accuracy'] > 0.6 and set(q['per_class']) == set(COLOURS) and 'accuracy' in q['change']
    assert res['baseline'] and set(res['baseline']) == {'accuracy', 'balanced_accuracy', 'f1_macro'}
    assert not [b for b in res['breaches'] if b['name'] in ('prediction_drift', 'accuracy_drop')], res['breaches']
    f = res['fairness']['sex']
    assert {'demographic_parity_difference', 'demographic_parity_ratio', 'equalized_odds_difference', 'groups'} <= set(f)
    assert set(f['groups']) == {'F', 'M'} and set(f['groups']['F']['selection_rate']) == set(COLOURS)
    s = tmp_path/'shift.csv'; colours(500, seed=6, mix=(0.1, 0.2, 0.7)).to_csv(s, index=False)
    r, res2 = run_monitor(mc_env, '--current', s, *LOOSE)
    assert r.returncode == 3, r.stderr[-2000:]
    assert res2['prediction_drift']['drifted'] and 'prediction_drift' in {b['name'] for b in res2['breaches']}
    assert res2['prediction_drift']['classes']['blue']['current'] > res2['prediction_drift']['classes']['blue']['reference'] + 0.2   # mix is (red, green, blue)
    assert (Path(res2['out_dir'])/'monitor.ipynb').stat().st_size > 0

def test_multiclass_from_log_uses_logged_scores(mc_env, mc_home, tmp_path):
    "After real traffic: quality from the logged class probabilities equals the model's on the same rows; labels by request id."
    from test_serving import start_server, stop, colours, records
    from mlkit.monitoring import monitor
    from mlkit.registry import load_predictor
    from mlkit.metrics import evaluate_predictions
    df = colours(200, seed=7)
    p, url = start_server(mc_home[0])
    try:
        for i in range(200):
            r = httpx.post(url + '/predict', json={'rows': records(df.drop(columns=['colour']).iloc[[i]])}, headers={'X-Request-ID': f'log-{i}'}, timeout=30)
            assert r.status_code == 200
    finally: stop(p)
    labels = tmp_path/'labels.csv'
    pd.DataFrame({'request_id': [f'log-{i}' for i in range(200)], 'colour': df.colour}).to_csv(labels, index=False)
    res = monitor(from_log=True, labels=labels, workspace=False, max_fairness_gap=1.0)
    assert res['source'] == 'log' and res['rows'] >= 200 and res['quality']['labelled_rows'] == 200
    _, pred = load_predictor(mc_home[1])
    off = evaluate_predictions(df.colour.to_numpy(), pred.predict(df)['proba'], task='multiclass', classes=pred.classes)
    assert res['quality']['accuracy'] == pytest.approx(off['accuracy'], abs=1e-9)
    assert res['quality']['log_loss'] == pytest.approx(off['log_loss'], abs=1e-6)
    assert not res['prediction_drift']['drifted']

def test_relative_accuracy_breach(mc_env, mc_home, tmp_path):
    "Live accuracy more than max_quality_drop below the evaluated accuracy breaches; within it, not; min_accuracy is optional."
    from test_serving import colours
    from mlkit.monitoring import monitor
    from mlkit.registry import register
    p = tmp_path/'cur.csv'; colours(400, seed=8).to_csv(p, index=False)
    acc = monitor(p, workspace=False)['quality']['accuracy']
    src = mc_home[0]/'colours'          # the trained folder register_colours registered
    for claimed, drop, breached in ((acc + 0.04, 0.05, False), (acc + 0.08, 0.05, True), (acc + 0.08, 0.1, False)):
        tag = register(src, 'colours-card', {'metrics': {'accuracy': claimed}})
        res = monitor(p, model=tag, workspace=False, max_quality_drop=drop, breach_rule='point')
        names = {b['name'] for b in res['breaches']}
        assert ('accuracy_drop' in names) == breached, (claimed, drop, res['breaches'])
        # the default interval rule: a breach only when the whole interval of live accuracy is below the floor
        ivl = monitor(p, model=tag, workspace=False, max_quality_drop=drop)
        hi = ivl['quality']['accuracy_ci'][1]
        assert ('accuracy_drop' in {b['name'] for b in ivl['breaches']}) == (hi < claimed - drop), (hi, claimed - drop)
        assert res['quality']['accuracy'] == pytest.approx(acc)
    b = [b for b in monitor(p, model=tag, workspace=False, breach_rule='point')['breaches'] if b['name'] == 'accuracy_drop'][0]
    assert b['value'] == pytest.approx(acc, abs=1e-6) and b['threshold'] == pytest.approx(acc + 0.08 - 0.05, abs=1e-6)
    assert 'accuracy_drop' in b['message'] and f"{acc:.4f}" in b['message']
    assert 'min_accuracy' in {b['name'] for b in monitor(p, model=tag, workspace=False, min_accuracy=acc + 0.01, breach_rule='point')['breaches']}

def test_regression_monitoring_reports_rmse(tmp_path, monkeypatch):
    "A regression model: quality is rmse/mae/r2 (no accuracy); labels far off breach rmse_rise; value drift on the prediction."
    home = tmp_path/'rhome'
    code = ("import numpy as np, pandas as pd\n"
            "from mlkit.data import infer_schema; from mlkit.train import fit, TrainParams; from mlkit.metrics import evaluate_predictions\n"
            "from mlkit.registry import register, promote; from mlkit.monitoring import reference_sample\n"
            "def t(n, seed):\n"
            "    rng = np.random.default_rng(seed); x = rng.normal(0, 1, n); c = rng.choice(['a', 'b'], n)\n"
            "    return pd.DataFrame(dict(x=x, c=c, y=3 * x + np.where(c == 'a', 1.0, -1.0) + rng.normal(0, 0.3, n)))\n"
            "tr, ho = t(800, 0), t(400, 9); s = infer_schema(tr, 'y')\n"
            "r = fit(tr, s, TrainParams(max_epochs=5), progress=False, logger=False)\n"
            f"d = {str(home / 'm')!r}; r.predictor.save(d); s.save(d + '/schema.json'); reference_sample(tr, 800).to_parquet(d + '/reference.parquet')\n"
            "m = evaluate_predictions(ho.y.to_numpy(), r.predictor.predict(ho)['value'], task='regression')\n"
            "t(400, 5).to_csv(d + '/../cur.csv', index=False); t(400, 5).assign(y=lambda f: f.y + 3 * m['rmse']).to_csv(d + '/../off.csv', index=False)\n"
            "tag = register(d, 'reg', {'metrics': {k: m[k] for k in ('rmse', 'mae', 'r2')}}); promote(tag); print(tag)")
    env = {**os.environ, 'MLKIT_HOME': str(home)}; env.pop('BENTOML_HOME', None)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    monkeypatch.setenv('MLKIT_HOME', str(home)); monkeypatch.delenv('BENTOML_HOME', raising=False)
    from mlkit.monitoring import monitor, quality_line
    res = monitor(home/'cur.csv', workspace=False)
    q = res['quality']
    assert res['task'] == 'regression' and list(q['headline']) == headline_metrics('regression') and 'accuracy' not in q
    assert q['rmse'] > 0 and q['mae'] > 0 and q['r2'] > 0.5 and res['baseline'] and 'rmse' in res['baseline']
    assert (res['prediction_drift']['test'], res['prediction_drift']['column'], res['prediction_drift']['drifted']) == ('wasserstein', 'score', False)
    assert res['breaches'] == [] and quality_line(res).startswith('rmse ')
    off = monitor(home/'off.csv', workspace=False)
    b = [b for b in off['breaches'] if b['name'] == 'rmse_rise']
    assert b and b[0]['value'] > b[0]['threshold'] == pytest.approx(res['baseline']['rmse'] * 1.25, rel=1e-6)
