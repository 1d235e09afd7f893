"SLOs from a running service, alert rules (promtool when available, else a schema check), dashboards, runbooks."
import json, os, shutil, subprocess, sys
from pathlib import Path
import httpx, pytest, yaml
from conftest import mlkit_cmd, ROOT
from mlkit.config import load_settings
from mlkit.slo import alert_rules, dashboards, parse_metrics, request_slis
from mlkit.ops import export_ops

def test_slo_against_running_service(tmp_path, adult_registered):
    from test_serving import start_server, stop
    env = {**os.environ}; env.pop('BENTOML_HOME', None)       # adult_registered: a production model in this test's MLKIT_HOME
    from mlkit.data import load_adult, ADULT_TARGET
    recs = json.loads(load_adult('test').drop(columns=[ADULT_TARGET]).head(20).to_json(orient='records'))
    p, url = start_server(os.environ['MLKIT_HOME'])
    try:
        for i in range(20): assert httpx.post(url + '/predict', json={'rows': [recs[i]]}).status_code == 200
        for i in range(3): assert httpx.post(url + '/predict', json={'rows': []}).status_code == 400
        # a latency objective no loaded test machine misses: every SLO with a value is met, so exit 0
        r = subprocess.run(mlkit_cmd('slo', '--url', url, '--json'), capture_output=True, text=True,
                           env={**env, 'MLKIT_SLO_LATENCY_P95_MS': '60000'}, timeout=60)
    finally: stop(p)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = {x['sli']: x for x in json.loads(r.stdout)['slos']}
    av = rows['availability']
    assert av['requests'] == 23 and av['value'] == 1.0 and av['met'] is True and av['burn_rate'] == 0 and av['error_budget_left'] == 1
    assert rows['latency_p95_ms']['value'] is not None and rows['latency_p95_ms']['value'] > 0 and rows['latency_p95_ms']['met'] is True
    assert rows['accuracy']['value'] is None and rows['accuracy']['met'] is None    # no monitor report yet

def test_burn_rate_math():
    text = ('bentoml_service_request_duration_seconds_count{endpoint="/predict",http_response_code="200"} 990\n'
            'bentoml_service_request_duration_seconds_count{endpoint="/predict",http_response_code="503"} 10\n')
    from mlkit.slo import compute_slos
    rows = compute_slos(text, None, load_settings(slo_availability=0.99))
    av = rows[0]
    assert av['value'] == pytest.approx(0.99) and av['burn_rate'] == pytest.approx(1.0) and av['error_budget_left'] == pytest.approx(0.0, abs=1e-9)

RULE_KEYS = {'alert', 'expr', 'labels', 'annotations'}

def test_alert_rules_valid(tmp_path):
    paths = export_ops(tmp_path)
    rules = yaml.safe_load(paths[0].read_text())
    # schema: groups of named rule lists; each rule an alert with expr, severity label, runbook annotation
    assert set(rules) == {'groups'}
    names = set()
    for g in rules['groups']:
        assert set(g) == {'name', 'rules'} and g['rules']
        for r in g['rules']:
            assert RULE_KEYS <= set(r) <= RULE_KEYS | {'for'}
            assert r['labels']['severity'] in ('page', 'ticket') and r['alert'] not in names
            assert r['expr'].count('(') == r['expr'].count(')')
            names.add(r['alert'])
            rb = r['annotations']['runbook_url']
            assert (ROOT/rb).exists(), rb
    burn = [r for r in rules['groups'][0]['rules']]
    assert {r['labels']['slo'] for r in burn} == {'availability', 'latency'} and len(burn) == 6
    assert [len(g['rules']) for g in rules['groups']] == [6, 6, 1]
    (logerr,) = rules['groups'][2]['rules']
    assert logerr['alert'] == 'MlkitPredictionLogWriteErrors' and logerr['expr'] == 'increase(mlkit_log_write_errors_total[10m]) > 0'
    assert logerr['labels']['severity'] == 'ticket' and logerr['annotations']['runbook_url'] == 'docs/runbooks/prediction-log.md'
    promtool = shutil.which('promtool')
    if promtool:
        r = subprocess.run([promtool, 'check', 'rules', str(paths[0])], capture_output=True, text=True)
        assert r.returncode == 0 and 'SUCCESS: 13 rules found' in r.stdout, r.stdout + r.stderr

def test_dashboards_and_gauges(tmp_path):
    db = dashboards(load_settings())
    for name, d in db.items():
        assert d['uid'] == f'mlkit-{name}' and len(d['panels']) == 6
        json.dumps(d)
    m = dict(model='adult:x', drift_share=0.4, prediction_drift=dict(score=0.2), quality=dict(accuracy=0.7),
             completeness={'age': 0.5}, freshness=dict(age_hours=30), fairness={}, breaches=[1, 2])
    from mlkit.slo import monitor_gauges
    s = {n: v for n, l, v in parse_metrics(monitor_gauges(m))}
    assert s['mlkit_drift_share'] == 0.4 and s['mlkit_accuracy'] == 0.7 and s['mlkit_monitor_breaches'] == 2

def test_runbooks_name_commands():
    for p in (ROOT/'docs'/'runbooks').glob('*.md'):
        assert '`mlkit ' in p.read_text(), p
