"The real service over HTTP on loopback: predictions, batching, bad input, auth, metrics, the log, build."
import json, os, signal, socket, subprocess, sys, time, concurrent.futures as cf
from pathlib import Path
import numpy as np, pandas as pd
import httpx, pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.train import fit, TrainParams

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def home(tmp_path_factory):
    "An isolated MLKIT_HOME with one registered model promoted to production."
    h = tmp_path_factory.mktemp('home')
    env = {**os.environ, 'MLKIT_HOME': str(h)}
    env.pop('BENTOML_HOME', None)
    code = ("from mlkit.data import *; from mlkit.train import *; from mlkit.registry import register, promote\n"
            "tr, te = load_adult(); s = infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)\n"
            "r = fit(tr.sample(3000, random_state=0), s, TrainParams(max_epochs=2), progress=False, logger=False)\n"
            f"d = {str(h / 'm')!r}; r.predictor.save(d); s.save(d + '/schema.json')\n"
            "t = register(d, 'adult', {'run_id': 'test'}); promote(t, reason='test'); print(t)")
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return h, out.stdout.strip().splitlines()[-1]

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

def _answers(url, rec):
    "Status and JSON answer of /predict for valid and invalid bodies (fixed request ids)."
    cases = {
        'valid': {'rows': [rec, {**rec, 'native_country': 'Atlantis'}, {k: v for k, v in rec.items() if k != 'sex'}]},
        'missing': {'rows': [{k: v for k, v in rec.items() if k != 'age'}]},
        'wrong_type': {'rows': [{**rec, 'hours_per_week': 'forty'}, {**rec, 'workclass': 1.5}]},
        'extra': {'rows': [{**rec, 'salary': 1}]},
        'empty': {'rows': []}, 'too_many': {'rows': [rec] * 1001}, 'not_object': [1, 2], 'no_rows': {}, 'rows_not_list': {'rows': 3},
    }
    out = {}
    for k, body in cases.items():
        r = post(url, body, headers={'X-Request-ID': f'req-{k}'})
        out[k] = (r.status_code, r.json(), r.headers.get('x-request-id'))
    r = post(url, '{"rows": [{"age": 25')
    out['malformed'] = (r.status_code, r.json()['error'].split(':')[0], None)
    return out

def test_fast_path_answers_as_the_bentoml_endpoint(server, home, rows):
    "The fast path (default) and BentoML's own endpoint (MLKIT_FAST_PATH=0, here with 2 workers) give the same answers."
    url, tag, _ = server
    rec = records(rows.head(1))[0]
    fast = _answers(url, rec)
    p, url2 = start_server(home[0], MLKIT_FAST_PATH='0', MLKIT_WORKERS='2')
    try: slow = _answers(url2, rec)
    finally: stop(p)
    assert fast.keys() == slow.keys()
    for k in fast:
        assert fast[k][0] == slow[k][0], (k, fast[k], slow[k])
        if k == 'valid':
            a, b = fast[k][1], slow[k][1]
            assert a['model'] == b['model'] == tag and a['request_id'] == b['request_id'] == 'req-valid' == fast[k][2] == slow[k][2]
            np.testing.assert_allclose([x['score'] for x in a['predictions']], [x['score'] for x in b['predictions']], atol=1e-6)
            assert [x['label'] for x in a['predictions']] == [x['label'] for x in b['predictions']]
        elif k == 'malformed': assert fast[k][1] == slow[k][1] == 'malformed JSON body'
        else:   # same error line, locations and types (a non-object record: 'dict_type' vs the model's 'model_type')
            norm = lambda a: (a['error'], [(tuple(d['loc']), d['type'].replace('dict_type', 'model_type')) for d in a['detail']])
            assert norm(fast[k][1]) == norm(slow[k][1]), (k, fast[k][1], slow[k][1])
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
