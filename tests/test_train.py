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
    assert set(f['groups']) == {'Female', 'Male'} and {'count', 'selection_rate', 'tpr', 'fpr', 'accuracy'} <= set(f['groups']['Male'])
    p = pd.read_parquet(d/'predictions.parquet')
    assert list(p.columns) == ['y_true', 'y_score', 'y_pred', 'sex', 'race'] and len(p) == 16281
    assert abs(((p.y_score >= 0.5) == (p.y_true == 1)).mean() - m['accuracy']) < 1e-12
    s = json.loads((d/'summary.json').read_text())
    assert {'run_id', 'status', 'error', 'data_hash', 'git_commit', 'params', 'durations', 'model_tag'} <= set(s)
    assert s['status'] == 'succeeded' and s['error'] is None and s['params']['max_epochs'] == 2
    assert s['data_hash'].startswith('sha256:')
    from mlkit.registry import card, model_path
    onnx = card(s['model_tag'])['onnx']           # every registered model carries a parity-checked ONNX file for serving
    assert onnx['parity_passed'] and onnx['max_abs_diff'] <= 1e-4 and (model_path(s['model_tag'])/'model.onnx').exists()
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

def test_ddp_strategy_in_the_kernel_is_usage_error():
    "The old README recipe fails at once (Lightning refuses DDP in a notebook kernel) and names the launcher to use."
    r = subprocess.run(mlkit_cmd('train', '-p', 'strategy', 'ddp', '-p', 'devices', '2'), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and '--launcher torchrun --nproc-per-node 2' in r.stderr, r.stderr
    assert not (Path(os.environ['MLKIT_REPORTS'])/'runs').exists()       # no run folder, no kernel

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

# ---- multiclass and date columns (issue 11)
from mlkit.data import Schema, Column
from mlkit.model import Predictor, NET

def _three_classes(n=300, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x': rng.normal(size=n), 'c': rng.choice(['u', 'v'], n)})
    df['y'] = np.where(df.x > 0.4, 'high', np.where(df.c == 'u', 'low-u', 'low-v'))
    s = Schema({'x': Column('numeric'), 'c': Column('categorical')}, 'y', task='multiclass', classes=['high', 'low-u', 'low-v'])
    return df, s

@pytest.fixture(scope='module')
def multiclass_fit():
    df, s = _three_classes()
    return df, s, fit(df, s, TrainParams(max_epochs=2), progress=False, logger=False)

def test_multiclass_trains_above_chance(multiclass_fit):
    df, s, r = multiclass_fit
    out = r.predictor.predict(df)
    assert r.params['effective_batch_size'] == 16 and r.params['batch_size'] == 256
    assert set(r.val_metrics) == {'accuracy', 'log_loss'}
    assert (out['label'] == df.y.to_numpy()).mean() > 0.6          # chance: 1/3
    assert out['proba'].shape == (300, 3) and np.allclose(out['proba'].sum(1), 1, atol=1e-6)
    assert set(out['label']) <= {'high', 'low-u', 'low-v'} and out['label'].dtype.kind == 'U'
    assert np.array_equal(out['score'], out['proba'].max(1)) and r.predictor.classes == ['high', 'low-u', 'low-v']
    rec = r.predictor.predict_records(df.head(50).to_dict('records'))
    assert np.array_equal(rec['proba'], out['proba'][:50]) and list(rec['label']) == list(out['label'][:50])

def test_multiclass_save_load_optimize(multiclass_fit, tmp_path):
    df, s, r = multiclass_fit
    r.predictor.save(tmp_path/'m')
    p2 = Predictor.load(tmp_path/'m')
    a = r.predictor.predict(df.head(64))['proba']
    assert p2.task == 'multiclass' and np.array_equal(p2.predict(df.head(64))['proba'], a)
    p2.optimize()
    for n in (1, 7, 64): assert np.abs(p2.predict(df.head(n))['proba'] - a[:n]).max() < 1e-5
    assert list(p2.predict(df.head(64))['label']) == list(r.predictor.predict(df.head(64))['label'])

def test_old_net_json_without_n_out_loads(adult, tmp_path):
    tr, te, s = adult
    # a model saved before `n_out` and `network` existed: an MLP with one output
    r = fit(tr.head(600), s, TrainParams(max_epochs=1, hidden=(16,), network='mlp'), progress=False, logger=False)
    r.predictor.save(tmp_path)
    meta = json.loads((tmp_path/NET).read_text())
    assert (meta['config']['n_out'], meta['config']['network']) == (1, 'mlp')
    del meta['config']['n_out'], meta['config']['network']; (tmp_path/NET).write_text(json.dumps(meta))
    p = Predictor.load(tmp_path)
    assert np.array_equal(p.predict(te.head(20))['score'], r.predictor.predict(te.head(20))['score'])
    assert p.classes == ['<=50K', '>50K'] and r.params['effective_batch_size'] == 32    # 510 training rows: 510 // 8 = 63 -> 32

def test_multiclass_encode_target_unknown_class():
    df, s = _three_classes(60)
    ft = FeatureTransform.fit(df, s)
    assert ft.target == dict(task='multiclass', classes=['high', 'low-u', 'low-v'])
    assert ft.encode_target(['low-v', 'high']).tolist() == [2, 0] and ft.encode_target(df.y).dtype == np.int64
    with pytest.raises(Exception, match=r"not in the classes.*'medium'"): ft.encode_target(['high', 'medium'])

def test_multiclass_split_keeps_every_class_in_training():
    from mlkit.data import split_rows
    df = pd.DataFrame({'x': np.arange(64.0), 'y': ['a'] * 40 + ['b'] * 20 + ['c'] * 2 + ['d'] * 2})
    tr, va = split_rows(df, 'y', 0.5, 0)
    assert set(tr.y) == {'a', 'b', 'c', 'd'} and va.y.value_counts().to_dict() == {'a': 20, 'b': 10, 'c': 1, 'd': 1}

def _dated(n=80, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.Timestamp('2022-06-01') + pd.to_timedelta(rng.integers(0, 900, n), unit='D') + pd.to_timedelta(rng.integers(0, 1440, n), unit='min')
    df = pd.DataFrame({'amount': rng.gamma(2, 10, n), 'd': t.strftime('%Y-%m-%dT%H:%M:%S'), 'k': rng.choice(list('pq'), n)})
    df.loc[[2, 9], 'd'] = [None, '']
    df['y'] = np.where(t.month > 6, 'late', 'early')
    s = Schema({'amount': Column('numeric'), 'd': Column('datetime'), 'k': Column('categorical')}, 'y', task='binary',
               classes=['early', 'late'], positive_class='late')
    return df, s

def test_date_column_transform_equals_records_transform(tmp_path):
    df, s = _dated()
    ft = FeatureTransform.fit(df, s)
    assert ft.inputs == ['amount', 'd', 'k'] and [c for c in ft.numeric if c.startswith('d__')] == ['d__days', 'd__month', 'd__dow', 'd__hour']
    recs = df.drop(columns='y').to_dict('records')
    recs[0]['d'] = '2023-03-01 08:00:00-05:00'; recs[1]['d'] = pd.Timestamp('2024-01-02 03:04:05')
    a, b = ft.transform(pd.DataFrame.from_records(recs)), ft.transform_records(recs)
    assert np.array_equal(a['x_num'], b['x_num']) and np.array_equal(a['x_cat'], b['x_cat'])
    ft2 = FeatureTransform.load(ft.save(tmp_path/'t.json'))
    assert np.array_equal(ft2.transform_records(recs)['x_num'], a['x_num'])
    with pytest.raises(Exception, match=r"column 'd' must be a date, got 'not a date'"): ft.transform_records([{**recs[3], 'd': 'not a date'}])
    with pytest.raises(Exception, match=r"column 'd' must be a date"): ft.transform(df.assign(d='not a date'))

def test_date_column_trains_and_serves_raw_strings():
    df, s = _dated(240)
    r = fit(df, s, TrainParams(max_epochs=2, hidden=(16,)), progress=False, logger=False)
    recs = [{'amount': 12.5, 'd': '2023-11-05', 'k': 'p'}, {'amount': None, 'd': None, 'k': None}]
    out = r.predictor.predict_records(recs)
    assert set(out) == {'score', 'label'} and np.isfinite(out['score']).all()
    assert np.allclose(out['score'], r.predictor.predict(pd.DataFrame(recs))['score'])

def test_day_first_dates_parse_alike_in_discovery_transform_and_serving(tmp_path):
    rng = np.random.default_rng(2)
    when = pd.date_range('2023-01-31', periods=90, freq='D') + pd.to_timedelta(rng.integers(0, 24, 90), unit='h')
    df = pd.DataFrame({'amount': rng.gamma(2, 10, 90), 'd': when.strftime('%d/%m/%Y %H:%M'), 'k': rng.choice(list('pq'), 90),
                       'y': rng.choice(['no', 'yes'], 90)})
    assert df.d[1].startswith('01/02/2023')                         # ambiguous on its own
    s = infer_schema(df, 'y')
    assert s.columns['d'].kind == 'datetime' and s.columns['d'].min.startswith('2023-01-31') and s.columns['d'].max.startswith('2023-04-30')
    ft = FeatureTransform.fit(df, s, min_count=1)
    assert ft.dayfirst == {'d': True}
    full, recs = ft.transform(df), df.drop(columns='y').to_dict('records')
    month = full['x_num'][:, list(ft.numeric).index('d__month')] * ft.numeric['d__month']['scale'] + ft.numeric['d__month']['median']
    assert np.allclose(month, when.month)                           # day-first: 01/02/2023 is in February
    for j in (0, 1, 2, 45):                                         # one served row gives the frame's arrays
        one = ft.transform_records([recs[j]])
        assert np.array_equal(one['x_num'], full['x_num'][j:j + 1]) and np.array_equal(one['x_cat'], full['x_cat'][j:j + 1])
    ft2 = FeatureTransform.load(ft.save(tmp_path/'t.json'))
    assert json.loads((tmp_path/'t.json').read_text())['date_dayfirst'] == {'d': True}
    assert np.array_equal(ft2.transform_records([recs[1]])['x_num'], full['x_num'][1:2])
    old = json.loads((tmp_path/'t.json').read_text()); del old['date_dayfirst']
    fold = FeatureTransform.from_dict(old)                          # a transform saved before the key existed
    assert fold.dayfirst == {'d': False} and np.array_equal(fold.transform(df.iloc[[0, 45]])['x_num'], full['x_num'][[0, 45]])
    assert not np.array_equal(fold.transform_records([recs[1]])['x_num'], full['x_num'][1:2])   # month-first: 2 January
    with pytest.raises(Exception, match=r"column 'd' must be a date, got '12345'"): ft.transform_records([{**recs[3], 'd': ' 12345 '}])

def test_training_rows_is_what_fit_trains_on():
    from mlkit.train import training_rows
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'x': rng.normal(size=240), 'y': rng.choice(['a', 'b', 'c'], 240)})
    df.loc[[0, 5, 9], 'y'] = None
    s = infer_schema(df, 'y')
    p = TrainParams(limit_rows=150, max_epochs=1)
    rows = training_rows(df, s, p)
    assert len(rows) == 150 and rows.y.notna().all() and rows.index[0] == 1 and 240 - 3 > rows.index[-1]
    assert len(training_rows(df, s, {'limit_rows': 0})) == len(training_rows(df, s)) == 237
    res = fit(df, s, p, progress=False, logger=False)
    assert res.train_rows + res.val_rows == len(rows)

def test_one_splitter_for_validation_and_test():
    from mlkit.data import stratified_mask, split_rows, holdout_split, HOLDOUT_SALT
    import mlkit.train as mt
    assert not hasattr(mt, '_as_category') and not hasattr(mt, 'split_train_val')
    df = pd.DataFrame({'x': np.arange(50.0), 'y': ['a'] * 45 + ['b'] * 3 + ['c'] * 2})
    tr, va = split_rows(df, 'y', 0.1, 7)
    assert holdout_split(df, 'y', 0.1, 7 - HOLDOUT_SALT)[1].equals(va)
    assert va.y.value_counts().to_dict() == {'a': 4, 'b': 1, 'c': 1} and set(tr.y) == {'a', 'b', 'c'}   # each class on both sides
    m = stratified_mask(df.y, 0.1, np.random.default_rng(7))
    assert va.x.tolist() == df.x[m].tolist()
