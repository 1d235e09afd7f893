"ONNX Runtime models: fp32 and int8 parity on every task's shape, the derived model's card and verification, the gates, export errors."
import json, subprocess, sys
import numpy as np, pandas as pd
import pytest, torch
from mlkit.data import infer_schema, load_adult, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.features import FeatureTransform
from mlkit.model import Predictor, build_network, net_config
from mlkit.config import DataError
from mlkit import optimize as O

def frame(task, n=400, seed=0):
    g = np.random.default_rng(seed)
    df = pd.DataFrame(dict(a=g.normal(size=n), b=g.uniform(0, 100, n), c=g.choice(['x', 'y', 'z'], n), d=g.choice(['p', 'q'], n)))
    df.loc[::17, 'a'] = np.nan                            # a missing flag too
    z = df['a'].fillna(0) + df['b'] / 50 + (df['c'] == 'x')
    df['y'] = {'binary': np.where(z > 1.5, 'yes', 'no'), 'multiclass': np.select([z < 1, z < 2], ['lo', 'mid'], 'hi'),
               'regression': 1000 * z + g.normal(size=n)}[task]
    return df

def predictor(task, network='tabm'):
    "An untrained network on a fitted transform: parity does not need a trained model."
    df = frame(task)
    ft = FeatureTransform.fit(df, infer_schema(df, 'y', ()))
    torch.manual_seed(0)
    return Predictor(build_network(net_config(ft, network)), ft), df

@pytest.mark.parametrize('network', ['tabm', 'mlp'])
@pytest.mark.parametrize('task', ['binary', 'multiclass', 'regression'])
def test_fp32_parity_and_same_outputs(tmp_path, task, network):
    pred, df = predictor(task, network)
    pred.save(tmp_path)
    rec = O.write_onnx(pred, tmp_path)
    assert rec['exporter'] == 'dynamo' and rec['dtype'] == 'fp32'
    sc = O.OnnxScorer(tmp_path)
    assert O.check_parity(pred, sc, df, 1e-4)['max_abs_diff'] <= 1e-4
    a, b = pred.predict(df), sc.predict(df)
    assert sorted(a) == sorted(b)
    for k in a:
        if a[k].dtype.kind in 'fc': np.testing.assert_allclose(a[k], b[k], atol=1e-4 * (1000 if task == 'regression' else 1))
    if task != 'regression': assert (a['label'] == b['label']).mean() > 0.99   # a tie at the threshold may flip
    one = sc.predict_records([{}])                        # the serving path, one all-missing row (batch axis is dynamic)
    assert len(next(iter(one.values()))) == 1

def test_int8_within_tolerance_and_smaller(tmp_path):
    pred, df = predictor('binary')
    (tmp_path/'fp32').mkdir(); (tmp_path/'int8').mkdir()
    pred.save(tmp_path/'fp32'); pred.save(tmp_path/'int8')
    f, q = O.write_onnx(pred, tmp_path/'fp32'), O.write_onnx(pred, tmp_path/'int8', int8=True)
    assert q['dtype'] == 'int8' and q['bytes'] < 0.7 * f['bytes']
    assert not (tmp_path/'int8'/'model.fp32.onnx').exists()
    r = O.check_parity(pred, O.OnnxScorer(tmp_path/'int8'), df, 0.02)
    assert 0 < r['max_abs_diff'] <= 0.02
    with pytest.raises(O.ParityError, match='differ from torch'): O.check_parity(pred, O.OnnxScorer(tmp_path/'int8'), df, 1e-9)

def test_unexportable_network_clear_error(tmp_path):
    class Polygamma(torch.nn.Module):
        config = dict(network='my.nets:poly')
        def forward(self, x_num, x_cat): return torch.polygamma(2, x_num.abs() + 1).sum(1)
    pred, _ = predictor('binary')
    with pytest.raises(DataError, match=r'network my\.nets:poly does not export to ONNX \(dynamo: .*polygamma.*; legacy: .*polygamma'):
        O.export_onnx(Polygamma(), O.example_inputs(pred), tmp_path/'m.onnx')

def test_serving_import_stays_light():
    "Serving may import optimize: it must not bring training, tracking or monitoring (nor the exporters' packages)."
    code = "import sys, mlkit.optimize; print([m for m in ('lightning', 'wandb', 'evidently', 'mlkit.train', 'mlkit.runs', 'onnx', 'onnxscript') if m in sys.modules])"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == '[]'

# --- a registered Adult model: derive, card, verification, gates ---

@pytest.fixture(scope='module')
def parent_dir(adult_model):
    """A small trained Adult model folder with its schema, reference sample and a card naming its data (as a training run
    registers it): conftest's session `adult_model` (4,000 rows, 4 epochs; read-only, `register` copies it)."""
    return adult_model

@pytest.fixture
def home(monkeypatch, parent_dir):
    "The parent registered and in production; loose quality thresholds (a 4-epoch model), few bootstrap resamples."
    from mlkit.registry import register, promote
    monkeypatch.delenv('BENTOML_HOME', raising=False)
    for k, v in dict(MLKIT_BOOTSTRAP_RESAMPLES='20', MLKIT_MAX_FAIRNESS_GAP='0.9', MLKIT_MAX_ECE='0.5').items(): monkeypatch.setenv(k, v)
    tag = register(parent_dir, 'adult', json.loads((parent_dir/'card.json').read_text()))
    promote(tag, 'production', reason='test')
    return tag

def test_derived_model_registered_gated_candidate(home):
    from mlkit.gates import optimize_model
    from mlkit.registry import alias_target, card, model_path, verify_folder, list_models
    s = optimize_model(home, int8=True, out=sys.stderr)
    assert s['status'] == 'candidate', (s.get('reason'), [g for g in s['gates'] if not g['passed']])
    new = s['candidate']
    assert new != home and new.split(':')[0] == 'adult'
    assert alias_target('candidate') == new and alias_target('production') == home       # production never moves
    assert {g['gate'] for g in s['gates']} >= {'probe', 'calibration', 'vs_production:accuracy', 'vs_production:roc_auc'}
    c = card(new)
    assert c['parent'] == home and c['optimized'] == 'onnx-int8' and c['target'] == ADULT_TARGET
    d = c['deltas']
    assert 0 < d['max_abs_score_diff'] <= 0.02 and abs(d['accuracy']) < 0.02 and abs(d['roc_auc']) < 0.02
    assert set(d['fairness']) == set(ADULT_SENSITIVE) and all('demographic_parity_difference' in f for f in d['fairness'].values())
    assert d['size_bytes']['onnx'] < d['size_bytes']['torch']
    assert set(d['latency_us']['onnx']) == set(d['latency_us']['torch_eager']) == {'1', '100'}
    assert c['onnx']['parity_passed'] and c['onnx']['exporter'] == 'dynamo'
    m = verify_folder(model_path(new), new)
    assert 'model.onnx' in m['files'] and 'reference.parquet' in m['files']
    assert isinstance(O.load_scorer(model_path(new)), O.OnnxScorer)
    assert type(O.load_scorer(model_path(new), 'torch')) is Predictor and type(O.load_scorer(model_path(home))) is Predictor
    from mlkit.serving import Scorer
    assert isinstance(Scorer(new, model_path(new)).predictor, O.OnnxScorer)   # the service scores it with ONNX Runtime
    assert next(r for r in list_models() if r['tag'] == new)['aliases'] == ['candidate']
    with pytest.raises(Exception, match='already optimized'): O.derive(new)

def test_rejected_derived_model_is_not_candidate(home, monkeypatch):
    from mlkit.gates import optimize_model
    from mlkit.registry import alias_target, list_models
    monkeypatch.setenv('MLKIT_MIN_ACCURACY', '0.999')                    # a gate no model passes
    s = optimize_model(home, out=sys.stderr)
    assert s['status'] == 'rejected' and s['candidate'] and 'min_accuracy' in [g['gate'] for g in s['gates'] if not g['passed']]
    assert alias_target('candidate') is None and alias_target('production') == home
    monkeypatch.setenv('MLKIT_INT8_MAX_ABS_DIFF', '1e-12')               # parity fails: nothing is registered
    n = len(list_models())
    s = optimize_model(home, int8=True, out=sys.stderr)
    assert s['status'] == 'rejected' and 'differ from torch' in s['reason'] and len(list_models()) == n
    assert alias_target('candidate') is None
