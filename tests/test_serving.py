"The real service over HTTP on loopback: predictions, batching, bad input, auth, metrics, the log, build."
import json, os, signal, socket, subprocess, sys, time, concurrent.futures as cf
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd, copy_home
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.train import fit, TrainParams

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def home(tmp_path_factory, adult_home):
    "An isolated MLKIT_HOME with one registered model promoted to production: a copy of conftest's session `adult_home`."
    return copy_home(adult_home, tmp_path_factory.mktemp('home'))

def start_server(home, **extra_env):
    port = free_port()
    env = {**os.environ, 'MLKIT_HOME': str(home), **extra_env}
    env.pop('BENTOML_HOME', None)
    log = open(Path(home)/f'server-{port}.log', 'w')   # a file, not a pipe: a full pipe would block the server
    p = subprocess.Popen(mlkit_cmd('serve', '--port', port), env=env, stdout=log, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    p.log_path = log.name
    url = f'http://127.0.0.1:{port}'
    deadline = time.time() + 90
    while time.time() < deadline:
        if p.poll() is not None: raise AssertionError(f"server exited: {Path(p.log_path).read_text()[-3000:]}")
        try:
            if httpx.get(url + '/readyz', timeout=1).status_code == 200: return p, url
        except httpx.HTTPError: pass
        time.sleep(0.3)
    stop(p); raise AssertionError('server not ready in 90 s')

def stop(p):
    try: os.killpg(p.pid, signal.SIGTERM); p.wait(20)
    except Exception:
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: pass

@pytest.fixture(scope='module')
def server(home):
    p, url = start_server(home[0])
    yield url, home[1], home[0]
    stop(p)

@pytest.fixture(scope='module')
def rows():
    te = load_adult('test')
    return te.drop(columns=[ADULT_TARGET]).head(200)

def records(df):
    return json.loads(df.to_json(orient='records'))   # NaN -> null, as a client would send

def post(url, body, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url + '/predict', content=data, headers={'content-type': 'application/json', **kw.pop('headers', {})}, timeout=30, **kw)

def test_predictions_equal_offline(server, rows, monkeypatch):
    url, tag, home = server
    monkeypatch.setenv('MLKIT_HOME', str(home)); monkeypatch.delenv('BENTOML_HOME', raising=False)
    from mlkit.registry import load_predictor
    _, pred = load_predictor(tag)
    r = post(url, {'rows': records(rows.head(100))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body['model'] == tag and len(body['predictions']) == 100
    off = pred.predict(rows.head(100))
    np.testing.assert_allclose([p['score'] for p in body['predictions']], off['score'], atol=1e-6)
    assert [p['label'] for p in body['predictions']] == off['label'].tolist()

def test_concurrent_single_rows_are_batched_correctly(server, rows):
    url, tag, _ = server
    recs = records(rows.head(64))
    def one(i): return i, post(url, {'rows': [recs[i]]})
    with cf.ThreadPoolExecutor(16) as ex: res = list(ex.map(one, range(64)))
    assert all(r.status_code == 200 for _, r in res)
    batch = post(url, {'rows': recs}).json()['predictions']
    for i, r in res: assert abs(r.json()['predictions'][0]['score'] - batch[i]['score']) < 1e-6

@pytest.mark.parametrize('case', ['missing', 'unknown', 'wrong_type', 'bool', 'nan', 'inf', 'empty', 'too_many', 'malformed', 'not_object', 'no_rows'])
def test_bad_input_is_4xx_naming_the_problem(server, rows, case):
    url, _, _ = server
    rec = records(rows.head(1))[0]
    bodies = {
        'missing': ({'rows': [{k: v for k, v in rec.items() if k != 'age'}]}, 'age', 'missing'),
        'unknown': ({'rows': [{**rec, 'salary': 1}]}, 'salary', 'extra'),
        'wrong_type': ({'rows': [{**rec, 'hours_per_week': 'forty'}]}, 'hours_per_week', 'number'),
        'bool': ({'rows': [{**rec, 'age': True}]}, 'age', 'number'),
        'nan': (json.dumps({'rows': [rec]}).replace('"age": 25', '"age": NaN'), 'age', 'finite'),
        'inf': (json.dumps({'rows': [rec]}).replace('"age": 25', '"age": Infinity'), 'age', 'finite'),
        'empty': ({'rows': []}, 'rows', 'at least 1'),
        'too_many': ({'rows': [rec] * 1001}, 'rows', 'at most 1000'),
        'malformed': ('{"rows": [{"age": 25', None, 'malformed JSON'),
        'not_object': ('[1, 2]', None, 'object'),
        'no_rows': ({}, 'rows', 'required'),
    }
    body, field, word = bodies[case]
    r = post(url, body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    text = r.text
    assert word.lower() in text.lower(), text
    if field: assert f'"{field}"' in text, text

def test_body_too_large_is_413(server):
    url, _, _ = server
    r = post(url, b'{"rows": [' + b' ' * (2 << 20) + b']}')
    assert r.status_code == 413 and 'exceeds' in r.json()['error']

def test_unseen_category_counted_and_sensitive_optional(server, rows):
    url, tag, home = server
    rec = records(rows.head(1))[0]
    before = httpx.get(url + '/metrics').text
    r = post(url, {'rows': [{**rec, 'native_country': 'Atlantis'}, {k: v for k, v in rec.items() if k not in ('sex', 'race')}]},
             headers={'X-Request-ID': 'req-atlantis'})
    assert r.status_code == 200 and r.json()['request_id'] == 'req-atlantis' and r.headers['x-request-id'] == 'req-atlantis'
    m = httpx.get(url + '/metrics').text
    line = [l for l in m.splitlines() if l.startswith('mlkit_unknown_category_total') and 'native_country' in l]
    assert line and float(line[0].split()[-1]) >= 1
    assert 'mlkit_predictions_total' in m and 'mlkit_score_bucket' in m and 'bentoml_service_request_total' in m

def test_prediction_log(server, rows, monkeypatch):
    url, tag, home = server
    post(url, {'rows': records(rows.head(3))}, headers={'X-Request-ID': 'req-log'})
    monkeypatch.setenv('MLKIT_HOME', str(home))
    from mlkit.predlog import read_prediction_log
    log = read_prediction_log()
    mine = log[log.request_id == 'req-log']
    assert len(mine) == 3 and set(mine.model) == {tag}
    assert {'ts', 'score', 'label', 'age', 'sex', 'native_country'} <= set(mine.columns)
    assert mine.age.tolist() == rows.head(3).age.astype(float).tolist()

def test_docs_show_real_fields(server):
    url, _, _ = server
    spec = httpx.get(url + '/docs.json').json()
    text = json.dumps(spec)
    for f in ('age', 'workclass', 'native_country', 'sex'): assert f'"{f}"' in text

def test_auth_token(home, rows):
    p, url = start_server(home[0], MLKIT_API_TOKEN='s3cret')
    try:
        body = {'rows': records(rows.head(1))}
        assert post(url, body).status_code == 401
        assert post(url, body, headers={'Authorization': 'Bearer wrong'}).status_code == 401
        assert post(url, body, headers={'Authorization': 'Bearer s3cret'}).status_code == 200
        assert httpx.get(url + '/readyz').status_code == 200
    finally: stop(p)

def _answers(url, rec, num='age', cat='native_country', optional='sex', ids=None):
    "Status and JSON answer of /predict for valid and invalid bodies (fixed request ids)."
    cases = {
        'valid': {'rows': [rec, {**rec, cat: 'Atlantis'}, {k: v for k, v in rec.items() if k != optional}]},
        'missing': {'rows': [{k: v for k, v in rec.items() if k != num}]},
        'wrong_type': {'rows': [{**rec, num: 'forty'}, {**rec, cat: 1.5}]},
        'extra': {'rows': [{**rec, 'salary': 1}]},
        'empty': {'rows': []}, 'too_many': {'rows': [rec] * 1001}, 'not_object': [1, 2], 'no_rows': {}, 'rows_not_list': {'rows': 3},
    }
    if ids:
        cases['ids'] = {'rows': [{**rec, ids: 7}, {**rec, ids: 'A-7'}, {k: v for k, v in rec.items() if k != ids}]}
        cases['bad_id'] = {'rows': [{**rec, ids: [1]}]}
    out = {}
    for k, body in cases.items():
        r = post(url, body, headers={'X-Request-ID': f'req-{k}'})
        out[k] = (r.status_code, r.json(), r.headers.get('x-request-id'))
    r = post(url, '{"rows": [{"age": 25')
    out['malformed'] = (r.status_code, r.json()['error'].split(':')[0], None)
    return out

def _assert_same_answers(fast, slow, tag):
    "The fast path's answers equal BentoML's endpoint's: statuses, predictions (every field), errors."
    assert fast.keys() == slow.keys()
    for k in fast:
        assert fast[k][0] == slow[k][0], (k, fast[k], slow[k])
        if fast[k][0] == 200:
            a, b = fast[k][1], slow[k][1]
            assert a['model'] == b['model'] == tag and a['request_id'] == b['request_id'] == f'req-{k}' == fast[k][2] == slow[k][2]
            assert len(a['predictions']) == len(b['predictions']) > 0
            for x, y in zip(a['predictions'], b['predictions']):
                assert x.keys() == y.keys(), (x, y)
                for f in x:
                    if f in ('score', 'value'): assert abs(x[f] - y[f]) < 1e-6
                    elif f == 'scores': assert x[f].keys() == y[f].keys() and all(abs(x[f][c] - y[f][c]) < 1e-6 for c in x[f])
                    else: assert x[f] == y[f], (f, x, y)
        elif k == 'malformed': assert fast[k][1] == slow[k][1] == 'malformed JSON body'
        else:   # same error line, locations and types (a non-object record: 'dict_type' vs the model's 'model_type')
            norm = lambda a: (a['error'], [(tuple(d['loc']), d['type'].replace('dict_type', 'model_type')) for d in a['detail']])
            assert norm(fast[k][1]) == norm(slow[k][1]), (k, fast[k][1], slow[k][1])

def test_fast_path_answers_as_the_bentoml_endpoint(server, home, rows):
    "The fast path (default) and BentoML's own endpoint (MLKIT_FAST_PATH=0, here with 2 workers) give the same answers."
    url, tag, _ = server
    rec = records(rows.head(1))[0]
    fast = _answers(url, rec)
    p, url2 = start_server(home[0], MLKIT_FAST_PATH='0', MLKIT_WORKERS='2')
    try: slow = _answers(url2, rec)
    finally: stop(p)
    _assert_same_answers(fast, slow, tag)
    assert set(fast['valid'][1]['predictions'][0]) == {'label', 'score'}
    m = httpx.get(url + '/metrics').text   # after other servers started on the same home: their metrics are kept apart
    rej = {l.split('reason="')[1].split('"')[0]: float(l.split()[-1]) for l in m.splitlines() if l.startswith('mlkit_rejected_requests_total{')}
    assert rej.get('validation', 0) >= 7 and rej.get('malformed_json', 0) >= 1, rej
    assert 'mlkit_batch_rows_bucket' in m

def test_workers_append_whole_lines_to_one_log(home, rows, monkeypatch):
    "Two worker processes under concurrent load: every scored row is logged once, no line torn or interleaved."
    p, url = start_server(home[0], MLKIT_WORKERS='2')
    recs = records(rows.head(50))
    try:
        def one(i): return post(url, {'rows': [recs[i % 50]] * (1 + i % 7)}, headers={'X-Request-ID': f'w2-{i}'}).status_code
        with cf.ThreadPoolExecutor(16) as ex: codes = list(ex.map(one, range(300)))
    finally: stop(p)
    assert codes == [200] * 300
    monkeypatch.setenv('MLKIT_HOME', str(home[0]))
    from mlkit.predlog import prediction_log_dir
    lines = [l for f in sorted(prediction_log_dir().glob('*.jsonl')) for l in f.read_text().splitlines()]
    mine = [json.loads(l) for l in lines if '"w2-' in l]    # json.loads fails on a torn or interleaved line
    assert len(mine) == sum(1 + i % 7 for i in range(300))
    assert {r['request_id'] for r in mine} == {f'w2-{i}' for i in range(300)}

# --- multiclass -----------------------------------------------------------------------------------------------------

COLOURS = ['blue', 'green', 'red']

def colours(n, seed=0, mix=(0.4, 0.35, 0.25)):
    "A three-class table: the colour from a noisy number and a shop; an order id, a sensitive column, a note to drop."
    rng = np.random.default_rng(seed)
    y = rng.choice(['red', 'green', 'blue'], n, p=list(mix))
    x1 = np.select([y == 'red', y == 'green'], [0.0, 2.0], 4.0) + rng.normal(0, 0.8, n)
    shop = np.where(y == 'blue', 'north', rng.choice(['north', 'south', 'east'], n))
    return pd.DataFrame(dict(order_id=np.arange(n) + 100_000 * seed, x1=x1, x2=rng.normal(0, 1, n), shop=shop,
                             sex=rng.choice(['F', 'M'], n), note=[f'call {i}' for i in range(n)], colour=y))

def register_colours(home, name='colours', epochs=3):
    "Train the colours model in a subprocess with MLKIT_HOME=home, register it with its held-out evaluation, promote it."
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from test_serving import colours\n"
            "from mlkit.data import infer_schema; from mlkit.train import fit, TrainParams; from mlkit.metrics import evaluate_predictions\n"
            "from mlkit.registry import register, promote; from mlkit.monitoring import reference_sample\n"
            "tr, ho = colours(800), colours(600, seed=9)\n"
            "s = infer_schema(tr, 'colour', ['sex'], id_columns=['order_id'], drop=['note'])\n"
            "r = fit(tr, s, TrainParams(max_epochs=%d), progress=False, logger=False)\n"
            "d = %r; r.predictor.save(d); s.save(d + '/schema.json'); reference_sample(tr, 800).to_parquet(d + '/reference.parquet')\n"
            "m = evaluate_predictions(ho.colour.to_numpy(), r.predictor.predict(ho)['proba'], task='multiclass', classes=r.predictor.classes)\n"
            "t = register(d, %r, {'metrics': {k: m[k] for k in ('accuracy', 'balanced_accuracy', 'f1_macro')}}); promote(t); print(t)"
            ) % (str(Path(__file__).parent), epochs, str(Path(home)/name), name)
    env = {**os.environ, 'MLKIT_HOME': str(home)}; env.pop('BENTOML_HOME', None)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]

@pytest.fixture(scope='module')
def mc_home(tmp_path_factory):
    h = tmp_path_factory.mktemp('mchome')
    return h, register_colours(h)

def test_multiclass_answers_label_score_scores_on_both_paths(mc_home, monkeypatch):
    "Multiclass: every class's probability (sum 1), the top one as score and label, ids echoed, the dropped note ignored; both paths agree."
    home, tag = mc_home
    df = colours(40, seed=1)
    rec = records(df.drop(columns=['colour']).head(1))[0]
    p, url = start_server(home)
    try:
        r = post(url, {'rows': records(df.drop(columns=['colour']))}, headers={'X-Request-ID': 'mc-1'})
        fast = _answers(url, rec, num='x1', cat='shop', optional='note', ids='order_id')
        metrics = httpx.get(url + '/metrics').text
    finally: stop(p)
    p, url2 = start_server(home, MLKIT_FAST_PATH='0')
    try: slow = _answers(url2, rec, num='x1', cat='shop', optional='note', ids='order_id')
    finally: stop(p)
    assert r.status_code == 200, r.text
    preds = r.json()['predictions']
    assert len(preds) == 40 and all(set(x) == {'label', 'score', 'scores', 'id'} for x in preds)
    for x, oid in zip(preds, df.order_id):
        assert list(x['scores']) == COLOURS and abs(sum(x['scores'].values()) - 1) < 1e-5
        assert x['score'] == max(x['scores'].values()) and x['label'] == max(x['scores'], key=x['scores'].get)
        assert x['id'] == {'order_id': int(oid)}
    monkeypatch.setenv('MLKIT_HOME', str(home)); monkeypatch.delenv('BENTOML_HOME', raising=False)
    from mlkit.registry import load_predictor
    _, pred = load_predictor(tag)
    off = pred.predict(df)
    assert [x['label'] for x in preds] == off['label'].tolist()
    np.testing.assert_allclose([[x['scores'][c] for c in COLOURS] for x in preds], off['proba'], atol=1e-6)
    assert (off['label'] == df.colour).mean() > 0.6          # the model learned something: the answers are not all one class
    _assert_same_answers(fast, slow, tag)
    assert [x['id'] for x in fast['ids'][1]['predictions']] == [{'order_id': 7}, {'order_id': 'A-7'}, None]
    assert fast['bad_id'][0] == 400 and 'order_id' in json.dumps(fast['bad_id'][1])
    assert fast['extra'][0] == 400
    counts = {l.split('label="')[1].split('"')[0]: float(l.split()[-1]) for l in metrics.splitlines()
              if l.startswith('mlkit_predictions_total{') and tag in l}
    assert set(counts) <= set(COLOURS) and sum(counts.values()) >= 40
    assert sum(counts.get(c, 0) for c in COLOURS) == sum(counts.values())
    from mlkit.predlog import read_prediction_log
    log = read_prediction_log()
    mine = log[log.request_id == 'mc-1']
    assert len(mine) == 40 and mine.order_id.tolist() == df.order_id.tolist()
    assert mine.label.tolist() == off['label'].tolist() and mine.scores.tolist() == [x['scores'] for x in preds]
    assert 'note' not in log.columns or log.note.isna().all()     # dropped: neither scored nor logged

# --- A/B canary: sticky assignment ------------------------------------------------------------------------------------

@pytest.mark.parametrize('fast', ['1', '0'])
def test_ab_canary_sticky_assignment_splits_batches_and_logs_arm_and_unit(mc_home, monkeypatch, fast):
    """MLKIT_AB_UNIT=order_id: a unit (the row's field, else the header of that name) always gets the same model, units split
    by the share, a batch of several units is split by arm and answered in order, and each logged row has its arm and unit."""
    home, prod = mc_home
    monkeypatch.setenv('MLKIT_HOME', str(home)); monkeypatch.delenv('BENTOML_HOME', raising=False)
    from mlkit.registry import register, promote, alias_target, load_predictor
    from mlkit.serving import ab_arm
    cand = alias_target('candidate')
    if cand is None:   # the production network again under a second tag: identical answers, a different model
        cand = register(Path(home)/'colours', 'colours'); promote(cand, 'candidate', reason='test ab')
    df = colours(40, seed=3)
    batch = records(df.drop(columns=['colour']))
    no_id = [{k: v for k, v in batch[0].items() if k != 'order_id'}]
    users = [f'user-{i}' for i in range(60)]
    p, url = start_server(home, MLKIT_CANARY_MODE='canary', MLKIT_CANARY_SHARE='0.5', MLKIT_AB_UNIT='order_id', MLKIT_FAST_PATH=fast)
    try:
        seen = {u: {post(url, {'rows': no_id}, headers={'Order_ID': u, 'X-Request-ID': f'ab{fast}-{u}-{k}'}).json()['model'] for k in range(2)} for u in users}
        r = post(url, {'rows': batch}, headers={'X-Request-ID': f'ab{fast}-batch'})
        anon = [post(url, {'rows': no_id}, headers={'X-Request-ID': f'ab{fast}-anon-{k}'}).json()['model'] for k in range(20)]
    finally: stop(p)
    want = {u: cand if ab_arm(u, cand, 0.5) else prod for u in users}
    assert seen == {u: {want[u]} for u in users}                         # sticky: every request of a user, the same model
    assert 15 <= sum(m == cand for m in want.values()) <= 45              # 60 users split about by the share
    assert set(anon) <= {prod, cand}                                     # no unit: the random per-request pick
    arms = [ab_arm(str(x['order_id']), cand, 0.5) for x in batch]
    assert 0 < sum(arms) < len(arms)
    assert r.status_code == 200 and r.json()['model'] == f'{prod},{cand}', r.text
    preds = r.json()['predictions']
    _, pred = load_predictor(prod)
    off = pred.predict(df)
    assert [x['id'] for x in preds] == [{'order_id': int(o)} for o in df.order_id]   # the parts merged back in order
    assert [x['label'] for x in preds] == off['label'].tolist()
    np.testing.assert_allclose([[x['scores'][c] for c in COLOURS] for x in preds], off['proba'], atol=1e-5)
    from mlkit.predlog import read_prediction_log
    log = read_prediction_log()
    mine = log[log.request_id == f'ab{fast}-batch']
    assert mine.order_id.tolist() == df.order_id.tolist() and mine.unit.tolist() == [str(o) for o in df.order_id]
    assert mine.arm.tolist() == ['candidate' if a else 'production' for a in arms]
    assert mine.model.tolist() == [cand if a else prod for a in arms]
    hdr = log[log.request_id.str.startswith(f'ab{fast}-user-')]
    assert len(hdr) == 120 and (hdr.unit == hdr.request_id.str.split('-').str[1:3].str.join('-')).all()
    assert (hdr.arm == np.where(hdr.model == cand, 'candidate', 'production')).all()
    none = log[log.request_id.str.startswith(f'ab{fast}-anon-')]
    assert len(none) == 20 and none.unit.isna().all() and set(none.arm) <= {'production', 'candidate'}

# --- the prediction log cannot be written -------------------------------------------------------------------------

def _broken_log(home, how):
    "A prediction log folder where every write fails: a path under a file (ENOTDIR, for root too) or a current file that is /dev/full (ENOSPC)."
    from datetime import datetime, timezone
    d = Path(home)/f'broken-{how}-{os.getpid()}-{time.time_ns()}'
    if how == 'full_disk':
        d.mkdir(); (d/f'predictions-{datetime.now(timezone.utc):%Y-%m-%d}.jsonl').symlink_to('/dev/full')
        return d
    d.write_text('a file, not a folder')
    return d/'log'

def _log_errors(url):
    m = httpx.get(url + '/metrics').text
    return sum(float(l.split()[-1]) for l in m.splitlines() if l.startswith('mlkit_log_write_errors_total'))

@pytest.mark.parametrize('how', ['path_is_a_file', 'full_disk'])
def test_log_write_failure_counted_and_requests_still_served(home, rows, how):
    "Default (log_required false): the service answers 200 and counts mlkit_log_write_errors_total (an alert rule fires on it)."
    p, url = start_server(home[0], MLKIT_PREDICTION_LOG=str(_broken_log(home[0], how)))
    try:
        assert _log_errors(url) == 0
        codes = [post(url, {'rows': records(rows.head(2))}).status_code for _ in range(3)]
        errors = _log_errors(url)
    finally: stop(p)
    assert codes == [200] * 3 and errors == 3, (codes, errors)

@pytest.mark.parametrize('fast', ['1', '0'])
def test_log_required_answers_503_when_the_log_fails(home, rows, fast):
    "log_required = true: a prediction that cannot be logged is not served: 503 with a clear error, on both paths; counted too."
    p, url = start_server(home[0], MLKIT_PREDICTION_LOG=str(_broken_log(home[0], 'path_is_a_file')), MLKIT_LOG_REQUIRED='true', MLKIT_FAST_PATH=fast)
    try:
        r = post(url, {'rows': records(rows.head(2))})
        errors = _log_errors(url)
        ok = httpx.get(url + '/readyz').status_code
    finally: stop(p)
    assert r.status_code == 503, (r.status_code, r.text)
    assert 'prediction log cannot be written' in r.json()['error'] and 'log_required' in r.json()['error'], r.text
    assert errors == 1 and ok == 200

def test_explain_endpoint_off_by_default_and_explains_when_on(server, rows, monkeypatch):
    "POST /explain is absent unless `explain_endpoint`; on, it explains /predict's body per raw column, completeness included."
    url, tag, home = server
    body = json.dumps(dict(rows=records(rows.head(2))))
    hdr = {'content-type': 'application/json'}
    assert httpx.post(url + '/explain', content=body, headers=hdr, timeout=30).status_code == 404
    p, url2 = start_server(home, MLKIT_EXPLAIN_ENDPOINT='1', MLKIT_EXPLAIN_MAX_ROWS='3')
    try:
        r = httpx.post(url2 + '/explain', content=body, headers=hdr, timeout=60)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out['model'] == tag and len(out['explanations']) == 2
        monkeypatch.setenv('MLKIT_HOME', str(home)); monkeypatch.delenv('BENTOML_HOME', raising=False)
        from mlkit.registry import load_predictor
        _, pred = load_predictor(tag)
        scores = pred.predict(rows.head(2))['score']
        for e, s in zip(out['explanations'], scores):
            assert list(e['attributions']) == list(pred.transform.inputs)
            assert abs(e['score'] - s) < 1e-4 and abs(sum(e['attributions'].values()) - (e['score'] - e['baseline'])) < 2e-3
        big = httpx.post(url2 + '/explain', content=json.dumps(dict(rows=records(rows.head(4)))), headers=hdr, timeout=60)
        assert big.status_code == 400 and 'explain_max_rows' in big.text
        bad = httpx.post(url2 + '/explain', content=json.dumps(dict(rows=[{'age': 'old'}])), headers=hdr, timeout=60)
        assert bad.status_code == 400                        # the same validation as /predict
    finally: stop(p)

def test_serving_knobs_are_settings():
    "Issue 16: every serving variable is a `Settings` field (MLKIT_<NAME> works through it); the API token is never printed."
    import dataclasses, re
    import mlkit.serving, mlkit.predlog, mlkit.optimize
    from mlkit.config import Settings, load_settings
    for m in (mlkit.serving, mlkit.predlog, mlkit.optimize):
        assert not re.search(r"os\.environ(\.get)?\(?\[?'MLKIT_", Path(m.__file__).read_text()), f'{m.__name__} reads MLKIT_* itself'
    knobs = {'model', 'alias', 'workers', 'max_rows', 'max_body_bytes', 'max_batch_size', 'max_concurrency', 'timeout_s', 'fast_path',
             'access_log', 'tracing', 'canary_mode', 'canary_share', 'backend', 'onnx_threads', 'torch_threads', 'api_token',
             'prometheus_dir', 'prediction_log', 'log_fsync'}
    assert knobs <= {f.name for f in dataclasses.fields(Settings)}
    env = dict(MLKIT_MAX_ROWS='7', MLKIT_WORKERS='cpu_count', MLKIT_FAST_PATH='0', MLKIT_MAX_CONCURRENCY='64', MLKIT_API_TOKEN='s3cret')
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try: s = load_settings()
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    assert (s.max_rows, s.workers, s.fast_path, s.max_concurrency, s.api_token) == (7, 'cpu_count', False, 64, 's3cret')
    assert 's3cret' not in repr(s) and 's3cret' not in str(s)
    o = mlkit.serving.service_options(s)
    assert (o['workers'], o['traffic']) == ('cpu_count', dict(timeout=30.0, max_concurrency=64))
