"Explanations: completeness, a planted feature ranks first, proxies, task shapes, a logged request explained again, the CLI."
import json
from datetime import datetime, timezone
import numpy as np, pandas as pd
import pytest, torch
from conftest import run_mlkit
from mlkit.config import DataError, Settings
from mlkit.data import infer_schema
from mlkit.features import FeatureTransform
from mlkit.model import Predictor, build_network, net_config
from mlkit import explain as E

TOL = 2e-3     # completeness, in probability: 32 Gauss-Legendre steps measure about 5e-4 at worst (nbs/05b_explain.ipynb)

def planted_table(n=1500, seed=0):
    "`key` alone decides `y`; `n1`, `n2`, `c1` are noise; `grp` (sensitive, not a model input) shifts `n1` only."
    g = np.random.default_rng(seed)
    df = pd.DataFrame(dict(key=g.normal(size=n), n1=g.normal(size=n), n2=g.normal(size=n), c1=g.choice(list('abc'), n),
                           grp=g.choice(['u', 'v'], n)))
    df['y'] = np.where(df.key > 0, 'yes', 'no')
    return df

@pytest.fixture(scope='module')
def planted():
    "A TabM model trained (5 epochs) on the planted table, with its schema and data."
    from mlkit.train import fit, TrainParams
    df = planted_table()
    s = infer_schema(df, 'y', ['grp'])
    torch.set_num_threads(1)
    return fit(df, s, TrainParams(max_epochs=5), progress=False, logger=False).predictor, s, df

def untrained(task, network='tabm', n=200):
    g = np.random.default_rng(1)
    df = pd.DataFrame(dict(x=g.normal(size=n), z=np.where(g.random(n) < 0.1, np.nan, g.normal(size=n)),
                           when=pd.Timestamp('2024-01-01') + pd.to_timedelta(g.integers(0, 300, n), 'D'),
                           c=g.choice(list('pqr'), n)))
    df['t'] = g.normal(size=n) if task == 'regression' else g.choice(['k1', 'k2', 'k3'] if task == 'multiclass' else ['a', 'b'], n)
    s = infer_schema(df, 't'); s.task = task
    if task == 'multiclass': s.classes = ['k1', 'k2', 'k3']
    ft = FeatureTransform.fit(df, s)
    torch.manual_seed(0)
    return Predictor(build_network(net_config(ft, network)), ft), df

def test_completeness_on_the_trained_model(planted):
    pred, _, df = planted
    r = E.attribute(pred, pred.transform.transform(df.head(200)), steps=32)
    assert np.abs(r['delta']).max() < TOL
    np.testing.assert_allclose(r['attributions'].sum(1), r['score'] - r['baseline'], atol=TOL)
    np.testing.assert_allclose(r['score'], pred.predict(df.head(200))['score'], atol=1e-6)
    np.testing.assert_allclose(r['baseline'], pred.predict_records([E.baseline_record(pred.transform)])['score'][0], atol=1e-6)

def test_planted_feature_ranks_first(planted):
    pred, s, df = planted
    imp = E.global_importance(E.explain_frame(pred, df.head(400), Settings()), {'grp': df.grp.head(400)}, min_group_size=50)
    assert list(imp['overall'])[0] == 'key' and imp['share']['key'] > 0.5, imp['share']
    assert set(imp['groups']['grp']['importance']) == {'u', 'v'}

@pytest.mark.parametrize('task,network', [('multiclass', 'tabm'), ('regression', 'tabm'), ('binary', 'mlp'), ('multiclass', 'mlp')])
def test_task_shapes_and_completeness(task, network):
    pred, df = untrained(task, network)
    r = E.attribute(pred, pred.transform.transform(df.head(16)))
    assert r['columns'] == ['x', 'z', 'when', 'c'] and r['attributions'].shape == (16, 4)    # z's flag, when's parts: one column each
    tol = TOL * (pred.transform.target['std'] if task == 'regression' else 1)
    assert np.abs(r['delta']).max() < tol
    rows = E.explain_records(pred, df.drop(columns=['t']).head(3).to_dict('records'), Settings())
    assert len(rows) == 3 and list(rows[0]['attributions']) == ['x', 'z', 'when', 'c']
    if task == 'multiclass':
        assert rows[0]['class'] in pred.classes
        np.testing.assert_allclose([x['score'] for x in rows], pred.predict(df.head(3))['score'], atol=1e-6)
        assert E.explain_records(pred, df.head(2).to_dict('records'), Settings(), target='k3')[1]['class'] == 'k3'
    if task == 'regression': np.testing.assert_allclose([x['score'] for x in rows], pred.predict(df.head(3))['value'], atol=1e-4)

def test_row_limit_and_unsupported_network(planted):
    pred, _, df = planted
    recs = df.drop(columns=['y']).head(11).to_dict('records')
    with pytest.raises(DataError, match='at most 10 rows'): E.explain_records(pred, recs, Settings())
    assert len(E.explain_records(pred, recs, Settings(explain_max_rows=11))) == 11
    with pytest.raises(Exception, match='cannot explain'): E.network_parts(torch.nn.Linear(2, 1))

def test_proxy_flag_rule():
    A = np.array([[1.0, 0.8, 0.04]] * 60 + [[1.0, 0.2, 0.01]] * 60)
    r = dict(columns=['a', 'b', 'c'], attributions=A)
    imp = E.global_importance(r, {'g': ['x'] * 60 + ['y'] * 60}, min_group_size=50, proxy_ratio=2.0)
    assert [(p['feature'], p['high'], p['low'], p['ratio']) for p in imp['proxies']] == [('b', 'x', 'y', 4.0)]    # c: too small a share
    assert E.global_importance(r, {'g': ['x'] * 60 + ['y'] * 60}, min_group_size=50, proxy_ratio=5.0)['proxies'] == []
    assert E.global_importance(r, {'g': ['x'] * 100 + ['y'] * 20}, min_group_size=50)['groups']['g']['small_groups'] == ['y']
    # b's attributions doubled: b gains the share a and c lose, so b's shift is the largest (no tie)
    d = E.importance_drift(imp, E.global_importance(dict(columns=['a', 'b', 'c'], attributions=A * [1, 2, 1])))
    assert d['largest']['feature'] == 'b' and d['largest']['change'] == 0.5 and d['total_shift'] == d['largest']['share_change'] > 0

def _register(pred, schema, df, tmp_path):
    from mlkit.registry import register
    d = tmp_path/'m'; pred.save(d); schema.save(d/'schema.json')
    df.to_parquet(d/'reference.parquet', index=False)
    return register(d, 'planted', dict(target='y', task='binary'))

def test_logged_request_matches_a_fresh_explanation(planted, tmp_path):
    "A request logged as the service logs it (a field left out) is explained with the model that answered, as afresh."
    from mlkit.predlog import PredictionLog
    from mlkit.monitoring import explain_request
    pred, s, df = planted
    tag = _register(pred, s, df, tmp_path)
    recs = df.drop(columns=['y']).iloc[3:5].to_dict('records'); recs[1].pop('n2')
    sc = pred.predict_records(recs)['score']
    now = datetime.now(timezone.utc).isoformat()
    log = PredictionLog()
    log.append([dict(ts=now, request_id='rq-7', model=tag, inputs=r, score=float(p), label='yes') for r, p in zip(recs, sc)]
               + [dict(ts=now, request_id='rq-7', model='other:1', inputs=recs[0], score=0.5, label='yes', shadow=True),
                  dict(ts=now, request_id='rq-8', model=tag, inputs=recs[0], score=float(sc[0]), label='yes')])
    log.close()
    got = explain_request('rq-7')
    fresh = E.explain_records(pred, recs, Settings())
    assert got['model'] == tag and len(got['rows']) == 2                        # the shadow answer is not the client's
    for g, f, logged in zip(got['rows'], fresh, sc):
        assert g['attributions'] == f['attributions'] and abs(g['logged_score'] - g['score']) < 1e-6 and g['logged_score'] == float(logged)
    assert got['inputs'][1]['n2'] is None
    with pytest.raises(DataError, match='no answered prediction'): explain_request('rq-none')

def test_cli_explain_json_and_text(planted, tmp_path):
    from mlkit.predlog import PredictionLog
    pred, s, df = planted
    tag = _register(pred, s, df.sample(300, random_state=0), tmp_path)
    r = run_mlkit('explain', tag, '--rows', '3', '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res['model'] == tag and len(res['rows']) == 3 and res['importance']['rows'] == 300 and res['data'] == 'reference sample'
    assert list(res['importance']['overall'])[0] == 'key' and res['completeness']['max_abs_error'] < TOL and res['ms_per_row'] > 0
    assert set(res['rows'][0]) >= {'row', 'score', 'baseline', 'attributions', 'error'}
    f = tmp_path/'few.csv'; df.head(20).to_csv(f, index=False)
    r = run_mlkit('explain', tag, '--data', f, '--rows', '2')
    assert r.returncode == 0 and 'row 1:' in r.stdout and 'global importance' in r.stdout and ' 1. key' in r.stdout, r.stdout + r.stderr
    rec = df.drop(columns=['y']).iloc[0].to_dict()
    log = PredictionLog(); log.append([dict(ts=datetime.now(timezone.utc).isoformat(), request_id='cli-1', model=tag, inputs=rec,
                                            score=float(pred.predict_records([rec])['score'][0]), label='yes')]); log.close()
    r = run_mlkit('explain', '--request-id', 'cli-1')
    assert r.returncode == 0 and f'answered by model {tag}' in r.stdout, r.stdout + r.stderr
    for args in ((), ('--request-id', 'cli-1', tag)):
        r = run_mlkit('explain', *args)
        assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
