"Training and evaluation: transform round trip, determinism, papermill runs end to end and a failing run."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.features import FeatureTransform, MISSING, UNKNOWN
from mlkit.train import fit, TrainParams

@pytest.fixture(scope='module')
def adult():
    tr, te = load_adult()
    return tr, te, infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)

def test_transform_roundtrip_identical(adult, tmp_path):
    tr, te, s = adult
    ft = FeatureTransform.fit(tr, s)
    ft2 = FeatureTransform.load(ft.save(tmp_path/'t.json'))
    a, b = ft.transform(te), ft2.transform(te)
    assert np.array_equal(a['x_num'], b['x_num']) and np.array_equal(a['x_cat'], b['x_cat'])
    assert b'pickle' not in (tmp_path/'t.json').read_bytes() and json.loads((tmp_path/'t.json').read_text())['version'] == 1

def test_transform_unseen_and_missing(adult):
    tr, te, s = adult
    ft = FeatureTransform.fit(tr, s)
    rows = te.head(4).copy().reset_index(drop=True)
    rows.loc[0, 'workclass'] = 'Moon-base'; rows.loc[1, 'workclass'] = None
    rows.loc[2, 'age'] = np.nan; rows.loc[3, 'capital_gain'] = 10**9
    (a, unk) = ft.transform(rows, stats=True)
    j = list(ft.categorical).index('workclass')
    assert a['x_cat'][0, j] == UNKNOWN and a['x_cat'][1, j] == MISSING and unk['workclass'] == 1
    assert a['x_num'][2, 0] == 0.0 and np.isfinite(a['x_num']).all() and a['x_num'][3].max() == ft.clip
    assert 'sex' not in ft.inputs and 'race' not in ft.inputs

def test_same_seed_same_metrics(adult):
    tr, te, s = adult
    small = tr.sample(3000, random_state=1)
    p = TrainParams(max_epochs=2, seed=3)
    r1 = fit(small, s, p, progress=False, logger=False)
    r2 = fit(small, s, p, progress=False, logger=False)
    assert r1.val_metrics == r2.val_metrics
    assert np.array_equal(r1.predictor.predict(te.head(500))['score'], r2.predictor.predict(te.head(500))['score'])
    r3 = fit(small, s, TrainParams(max_epochs=2, seed=4), progress=False, logger=False)
    assert r3.val_metrics != r1.val_metrics

def test_regression_fit(adult):
    tr, te, _ = adult
    s = infer_schema(tr, 'hours_per_week')
    r = fit(tr.head(3000), s, TrainParams(max_epochs=2), progress=False, logger=False)
    assert s.task == 'regression' and r.val_metrics['rmse'] < tr.hours_per_week.std()

METRIC_KEYS = {'accuracy', 'roc_auc', 'precision', 'recall', 'f1', 'brier', 'ece', 'log_loss', 'fpr', 'positive_class', 'fairness'}

def test_train_and_evaluate_papermill_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv('WANDB_MODE', 'offline')
    r = subprocess.run(mlkit_cmd('train', '-p', 'limit_rows', '2500', '-p', 'max_epochs', '2'), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'epoch 1/2' in r.stdout and 'epoch 2/2' in r.stdout          # progress lines streamed from the kernel
    runs = list((Path(os.environ['MLKIT_REPORTS'])/'runs').iterdir())
    assert len(runs) == 1
    d = runs[0]
    for f in ['train.ipynb', 'evaluate.ipynb', 'params.json', 'metrics.json', 'predictions.parquet', 'summary.json',
              'roc.png', 'calibration.png', 'confusion.png', 'fairness.png', 'model/weights.safetensors']:
        assert (d/f).exists() and (d/f).stat().st_size > 0, f
    m = json.loads((d/'metrics.json').read_text())
    assert METRIC_KEYS <= set(m) and m['positive_class'] == '>50K' and m['rows'] == 16281
    assert set(m['fairness']) == {'sex', 'race'}
    f = m['fairness']['sex']
    assert {'demographic_parity_difference', 'demographic_parity_ratio', 'equalized_odds_difference', 'groups'} <= set(f)
    assert set(f['groups']) == {'Female', 'Male'} and set(f['groups']['Male']) == {'count', 'selection_rate', 'tpr', 'fpr', 'accuracy'}
    p = pd.read_parquet(d/'predictions.parquet')
    assert list(p.columns) == ['y_true', 'y_score', 'y_pred', 'sex', 'race'] and len(p) == 16281
    assert abs(((p.y_score >= 0.5) == (p.y_true == 1)).mean() - m['accuracy']) < 1e-12
    s = json.loads((d/'summary.json').read_text())
    assert {'run_id', 'status', 'error', 'data_hash', 'git_commit', 'params', 'durations', 'model_tag'} <= set(s)
    assert s['status'] == 'succeeded' and s['error'] is None and s['params']['max_epochs'] == 2
    assert s['data_hash'].startswith('sha256:')
    assert list((d/'wandb'/'wandb').glob('offline-run-*')), 'wandb offline run for `wandb sync`'
    nb = json.loads((d/'evaluate.ipynb').read_text())
    assert any('image/png' in o.get('data', {}) for c in nb['cells'] for o in c.get('outputs', []))
    # the same model evaluated again as its own run
    r = subprocess.run(mlkit_cmd('evaluate', '--model', d.name), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ev = [x for x in (Path(os.environ['MLKIT_REPORTS'])/'runs').iterdir() if x.name.startswith('eval-')][0]
    assert json.loads((ev/'metrics.json').read_text())['accuracy'] == m['accuracy']

def test_failing_run_is_recorded(tmp_path):
    bad = tmp_path/'bad.csv'
    pd.DataFrame({'a': range(40), 'b': ['x', 'y'] * 20, 'leak': ['p', 'q'] * 20, 'y': ['p', 'q'] * 20}).to_csv(bad, index=False)
    r = subprocess.run(mlkit_cmd('train', '--data', bad, '--target', 'y', '-p', 'max_epochs', '1'), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and 'train notebook failed in cell' in err[0] and 'target_leak' in err[0] and 'Traceback' not in r.stderr
    d = next((Path(os.environ['MLKIT_REPORTS'])/'runs').iterdir())
    s = json.loads((d/'summary.json').read_text())
    assert s['status'] == 'failed' and 'target_leak' in s['error']
    nb = json.loads((d/'train.ipynb').read_text())
    assert any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))
    assert not (d/'evaluate.ipynb').exists() and not (d/'metrics.json').exists()

def test_unknown_param_is_usage_error():
    r = subprocess.run(mlkit_cmd('train', '-p', 'epochs', '3'), capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown training parameter' in r.stderr

def test_plain_papermill_cli(tmp_path):
    "The workflow runs from the plain papermill CLI with -p, as a scheduler would call it."
    from conftest import ROOT
    out = tmp_path/'train.ipynb'
    exe = Path(sys.executable).parent/'papermill'
    r = subprocess.run([str(exe), str(ROOT/'nbs'/'workflows'/'train.ipynb'), str(out), '-k', 'python3', '--no-progress-bar',
                        '-p', 'run_dir', str(tmp_path/'run'), '-y', 'params: {limit_rows: 1500, max_epochs: 1}', '-p', 'progress', 'lines'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'run'/'model'/'net.json').exists() and json.loads((tmp_path/'run'/'params.json').read_text())['params']['limit_rows'] == 1500
