"""Every corpus table (tests/corpus.py: scikit-learn's bundled tables and generated messy ones) through the stages:
discovery validation, task inference, training, evaluation with baselines, and the serving path's scoring.
A few hundred rows and 2 epochs each, so the suite stays fast; `make corpus` runs the full `mlkit run` on each."""
import json, os, subprocess
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from conftest import mlkit_cmd
import corpus
from mlkit.data import load_for_run
from mlkit.train import fit, TrainParams
from mlkit.model import Predictor
from mlkit.metrics import fit_baselines, primary_metric
from mlkit.runs import evaluate_predictor

ROWS = 300
# every quality gate open (the probe and data validation still judge): a tiny model is promoted, whatever its quality
LOOSE_GATES = {'MLKIT_MAX_FAIRNESS_GAP': '1', 'MLKIT_GATE_BASELINE_TOLERANCE': '1', 'MLKIT_GATE_MIN_SKILL': '-10', 'MLKIT_MAX_ECE': '1',
               'MLKIT_GATE_ACCURACY_TOLERANCE': '1', 'MLKIT_GATE_AUC_TOLERANCE': '1'}

@pytest.fixture(scope='module')
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('corpus')

@pytest.mark.parametrize('name', list(corpus.TABLES))
def test_table_through_the_stages(name, corpus_dir):
    t = corpus.TABLES[name]
    path = corpus.write_table(name, corpus_dir, n_rows=ROWS, seed=0)
    train, test, schema, rep = load_for_run(path, t.target, t.sensitive, report=True)
    # discovery: usable data is never an error, and the task is the one the table was built for
    assert rep.ok, str(rep)
    assert schema.task == t.task, (schema.task, schema.task_reason)
    assert schema.task_reason
    if t.n_classes: assert len(schema.classes) == t.n_classes
    assert t.target not in schema.columns and not set(schema.dropped) & set(schema.columns)
    res = fit(train, schema, TrainParams(max_epochs=2), progress=False, logger=False)
    m, preds = evaluate_predictor(res.predictor, test, schema)
    m['baselines'] = fit_baselines(train, test, schema, seed=0)
    key, _ = primary_metric(schema.task)
    assert isinstance(m[key], float) and np.isfinite(m[key])
    assert set(m['baselines']) == {'trivial', 'linear', 'hist_gradient_boosting'}
    for b in m['baselines'].values(): assert not b.get('error') and np.isfinite(b[key]), m['baselines']
    assert len(preds) == test[t.target].notna().sum()
    if schema.task == 'multiclass': assert {f'p_{c}' for c in schema.classes} <= set(preds.columns)
    # the serving path: the saved model, loaded and traced, scores JSON records as the in-memory model scores frames
    d = corpus_dir/f'{name}-model'; res.predictor.save(d)
    served = Predictor.load(d).optimize()
    rows = test.drop(columns=[t.target]).head(20)
    recs = json.loads(rows.to_json(orient='records', date_format='iso'))
    got, want = served.predict_records(recs), res.predictor.predict(rows)
    if schema.task == 'regression': np.testing.assert_allclose(got['value'], want['value'], rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(got['score'], want['score'], atol=1e-5)
        assert list(got['label']) == list(want['label']) and set(got['label']) <= set(schema.classes)

def test_discovery_drops_what_cannot_be_an_input(corpus_dir):
    "The generated tables' constant, ID-like and free-text columns are dropped with a reason; real features stay."
    reasons = {}
    for name in ('churn', 'credit', 'tickets', 'sensors', 'digits'):
        t = corpus.TABLES[name]
        _, _, schema, rep = load_for_run(corpus.write_table(name, corpus_dir, n_rows=ROWS), t.target, t.sensitive, report=True)
        reasons.update({f'{name}.{c}': why for c, why in schema.dropped.items()})
        # each dropped column is said once, as a warning naming it (credit drops none)
        said = sorted(p.column for p in rep.problems if p.rule == 'dropped_column')
        assert said == sorted(schema.dropped) and all(p.severity == 'warning' for p in rep.problems if p.rule == 'dropped_column'), (name, said)
    assert not any(k.startswith('credit.') for k in reasons) and len(reasons) > 5, reasons
    whys = set(reasons.values())
    assert {'constant', 'id-like'} <= whys, reasons
    assert any(k.startswith('digits.') and v == 'constant' for k, v in reasons.items()), reasons

def test_multiclass_table_through_mlkit_run(tmp_path):
    """One multiclass table runs the whole main job (validate, train, evaluate with baselines, gates, serve, monitor), then
    a contract evaluation of a new file, a gated retrain and a canary report on logged multiclass answers."""
    path = corpus.write_table('iris', tmp_path)
    env = {**os.environ}; env.pop('BENTOML_HOME', None)          # the test's own MLKIT_HOME and reports (conftest)
    sh = lambda *a: subprocess.run(mlkit_cmd(*a), capture_output=True, text=True, env=env, timeout=900)
    # gates loose enough for a 3-epoch network on 120 rows: the job promotes (the flow is under test, not the model's quality)
    env.update(LOOSE_GATES)
    r = sh('run', '--data', path, '--target', 'species', '-p', 'max_epochs', '3', '--simulate-rows', '30', '--no-build')
    for k in LOOSE_GATES: del env[k]
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    s = json.loads(next((tmp_path/'reports'/'runs').glob('run-*/summary.json')).read_text())
    assert s['status'] == 'succeeded' and s['data']['task'] == 'multiclass'
    assert set(s['baselines']) == {'trivial', 'linear', 'hist_gradient_boosting'}
    assert {'vs_trivial', 'calibration'} <= {g['gate'] for g in s['gates']} and any(g['gate'].startswith('vs_baseline:') for g in s['gates'])
    assert s['promoted'] is True and s['decision'].startswith('promoted to production: all'), s['decision']
    assert s['traffic']['requests'] == 30 and s['traffic']['non_200'] == 0
    assert s['monitor']['quality'] is not None
    assert 'species' in r.stdout and 'multiclass' in r.stdout
    tag = s['model_tag']
    # evaluating a new file is a contract: the model's schema decides, and a violation names the problem
    new = tmp_path/'iris_new.csv'; corpus.load('iris', n_rows=90, seed=1).to_csv(new, index=False)
    r = sh('evaluate', '--model', tag, '--data', new)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ev = json.loads(next((tmp_path/'reports'/'runs').glob('eval-*/metrics.json')).read_text())
    assert ev['rows'] == 90 and ev['task'] == 'multiclass' and 'hist_gradient_boosting' in ev['baselines']
    bad = tmp_path/'iris_bad.csv'; corpus.load('iris', n_rows=60, seed=1).drop(columns=['petal_length_cm']).to_csv(bad, index=False)
    r = sh('evaluate', '--model', tag, '--data', bad)
    assert r.returncode == 1 and "checked against the model's schema) is invalid" in r.stderr and 'missing_column petal_length_cm' in r.stderr, r.stderr[-2000:]
    # a gated retrain of the multiclass production model; an accuracy floor no model reaches: rejected, exit 3, every
    # gate still judged (the passing path: tests/test_loop.py::test_retrain_if_drift_passes_gates_sets_candidate)
    assert sh('models', 'promote', tag, '--reason', 'test').returncode == 0
    env['MLKIT_MIN_ACCURACY'] = '1.01'
    r = sh('retrain', '--data', new, '-p', 'max_epochs', '3')
    del env['MLKIT_MIN_ACCURACY']
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]
    rs = json.loads(max((tmp_path/'reports'/'runs').glob('retrain-*/summary.json'), key=lambda p: p.stat().st_mtime).read_text())
    gates = {g['gate']: g['passed'] for g in rs['gates']}
    assert rs['status'] == 'rejected' and {'vs_trivial', 'vs_production:accuracy', 'probe'} <= set(gates), rs['gates']
    assert gates['min_accuracy'] is False and 'min_accuracy' in r.stdout
    assert rs['metrics']['candidate']['accuracy'] is not None and rs['metrics']['production']['accuracy'] is not None
    # the canary compares both models on logged answers with delayed labels
    cand = rs['candidate']
    assert sh('models', 'promote', cand, '--alias', 'candidate').returncode == 0
    from mlkit.registry import model_path
    from mlkit.serving import Scorer
    rows = corpus.load('iris', n_rows=80, seed=2)
    recs = json.loads(rows.drop(columns=['species']).to_json(orient='records'))
    for t in (tag, cand):
        sc = Scorer(t, model_path(t))
        for i, rec in enumerate(recs): sc.log_rows(f'c-{t[-4:]}-{i}', [rec], sc.score([rec]), latency_ms=1.0)
    labels = tmp_path/'labels.csv'
    pd.DataFrame({'request_id': [f'c-{t[-4:]}-{i}' for t in (tag, cand) for i in range(len(recs))],
                  'species': list(rows.species) * 2}).to_csv(labels, index=False)
    # a score-drift limit of 0: a breach is then any drift beyond the sampling allowance, and two different models' scores
    # on the same rows differ by more (exit 3)
    env['MLKIT_CANARY_MAX_SCORE_DRIFT'] = '0'
    r = sh('canary', 'report', '--labels', labels, '--json')
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep['candidate']['rows'] == 80 and rep['production']['rows'] == 80 and rep['verdict'] == 'breach'
    assert 'score_drift' in {b['name'] for b in rep['breaches']} and rep['score_drift'] > 0, rep['breaches']
    assert 0 <= rep['candidate']['accuracy'] <= 1 and 0 <= rep['production']['accuracy'] <= 1
