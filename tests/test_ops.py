"""Generated operations files: every Kubernetes manifest validated offline against the Kubernetes 1.30 schemas
(kubernetes-validate's bundled, strict schemas), the ServiceMonitor against a minimal schema of the
prometheus-operator CRD fields it uses, the cron line and the systemd units (systemd-analyze when available)."""
import copy, inspect, os, re, shutil, socket, subprocess
from pathlib import Path
import jsonschema, pytest, yaml
import kubernetes_validate
from mlkit.config import load_settings
from mlkit import ops
from mlkit.ops import EXIT_CODES, export_ops, k8s_manifests, cron_line, systemd_units, on_calendar

K8S_VERSION = '1.30.0'      # bundled by kubernetes-validate (constraints.txt pins it); the oldest maintained minor we target

def k8s_validate(obj):
    "Raise on any difference from the strict (no unknown fields) Kubernetes schema of obj's kind."
    return kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

# ServiceMonitor is a CRD (no Kubernetes schema): the prometheus-operator fields mlkit writes, types as in its CRD
SERVICE_MONITOR_SCHEMA = {
    'type': 'object', 'required': ['apiVersion', 'kind', 'metadata', 'spec'], 'additionalProperties': False,
    'properties': {
        'apiVersion': {'const': 'monitoring.coreos.com/v1'}, 'kind': {'const': 'ServiceMonitor'},
        'metadata': {'type': 'object', 'required': ['name', 'namespace'],
                     'properties': {'name': {'type': 'string'}, 'namespace': {'type': 'string'},
                                    'labels': {'type': 'object', 'additionalProperties': {'type': 'string'}}}},
        'spec': {'type': 'object', 'required': ['selector', 'endpoints'], 'additionalProperties': False, 'properties': {
            'selector': {'type': 'object', 'additionalProperties': False, 'properties': {
                'matchLabels': {'type': 'object', 'additionalProperties': {'type': 'string'}}}},
            'namespaceSelector': {'type': 'object', 'additionalProperties': False, 'properties': {
                'matchNames': {'type': 'array', 'items': {'type': 'string'}}, 'any': {'type': 'boolean'}}},
            'endpoints': {'type': 'array', 'minItems': 1, 'items': {'type': 'object', 'additionalProperties': False, 'properties': {
                'port': {'type': 'string'}, 'path': {'type': 'string', 'pattern': '^/'},
                'interval': {'type': 'string', 'pattern': r'^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'},
                'scheme': {'enum': ['http', 'https']}}}}}}}}

@pytest.fixture
def exported(tmp_path, monkeypatch):
    monkeypatch.setenv('MLKIT_REPORTS', str(tmp_path/'reports'))
    return tmp_path/'ops', export_ops(tmp_path/'ops', k8s=True, cron=True, systemd=True, namespace='ml-prod',
                                      image='registry.example.com/mlkit:1.2.3', schedule='30 2 * * *', data='/data/new.parquet')

def objects(paths):
    return [(p.name, o) for p in paths if p.suffix == '.yaml' for o in yaml.safe_load_all(p.read_text()) if o]

@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k): raise OSError('network use in an offline test')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)

def test_export_ops_writes_every_file(exported):
    out, paths = exported
    rel = sorted(p.relative_to(out).as_posix() for p in paths)
    assert rel == ['alerts.rules.yml', 'cron/mlkit-retrain.cron', 'grafana/debug.json', 'grafana/executive.json',
                   'grafana/oncall.json', 'k8s/namespace.yaml', 'k8s/retrain-cronjob.yaml', 'k8s/servicemonitor.yaml',
                   'k8s/serving.yaml', 'k8s/train-job.yaml', 'systemd/mlkit-retrain.service', 'systemd/mlkit-retrain.timer']
    assert all(p.exists() for p in paths)
    kinds = sorted(o['kind'] for _, o in objects(paths))
    assert kinds == ['CronJob', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'Namespace', 'PodDisruptionBudget',
                     'Service', 'Service', 'ServiceMonitor']
    assert all(o['metadata'].get('namespace') == 'ml-prod' for _, o in objects(paths) if o['kind'] != 'Namespace')

def test_export_ops_default_writes_only_monitoring_files(tmp_path, monkeypatch):
    monkeypatch.setenv('MLKIT_REPORTS', str(tmp_path/'reports'))
    assert [p.name for p in export_ops(tmp_path)] == ['alerts.rules.yml', 'executive.json', 'oncall.json', 'debug.json']

def test_every_manifest_validates_offline_against_kubernetes_schemas(exported, no_network):
    _, paths = exported
    checked = []
    for name, o in objects(paths):
        if o['kind'] == 'ServiceMonitor': continue        # a CRD: next test
        assert k8s_validate(o) == '1.30', (name, o['kind'])
        checked.append(o['kind'])
    assert len(checked) == 8

def test_service_monitor_matches_the_crd_fields_it_uses(exported):
    _, paths = exported
    (sm,) = [o for _, o in objects(paths) if o['kind'] == 'ServiceMonitor']
    jsonschema.validate(sm, SERVICE_MONITOR_SCHEMA)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError): k8s_validate(sm)    # why it has its own schema
    svc = next(o for _, o in objects(paths) if o['kind'] == 'Service' and o['metadata']['name'] == 'mlkit')
    assert sm['spec']['selector']['matchLabels'] == svc['metadata']['labels']              # it selects the Service
    assert sm['spec']['endpoints'][0]['port'] in [p['name'] for p in svc['spec']['ports']]
    bad = copy.deepcopy(sm); bad['spec']['endpoints'][0]['port'] = 3000                    # CRD: port is a name
    with pytest.raises(jsonschema.ValidationError): jsonschema.validate(bad, SERVICE_MONITOR_SCHEMA)

def test_validation_fails_on_a_wrong_type_or_a_missing_field(no_network):
    m = k8s_manifests(load_settings())
    dep = m['serving.yaml'][0]
    k8s_validate(dep)
    wrong = copy.deepcopy(dep); wrong['spec']['replicas'] = 'two'
    with pytest.raises(kubernetes_validate.ValidationError, match="'two' is not of type"): k8s_validate(wrong)
    nameless = copy.deepcopy(dep); del nameless['spec']['template']['spec']['containers'][0]['name']
    with pytest.raises(kubernetes_validate.ValidationError, match="'name' is a required property"): k8s_validate(nameless)
    noselector = copy.deepcopy(dep); del noselector['spec']['selector']
    with pytest.raises(kubernetes_validate.ValidationError, match="'selector' is a required property"): k8s_validate(noselector)
    typo = copy.deepcopy(m['retrain-cronjob.yaml'][0]); typo['spec']['concurrencyPolicyy'] = 'Forbid'
    with pytest.raises(kubernetes_validate.ValidationError): k8s_validate(typo)            # strict: no unknown fields
    job = copy.deepcopy(m['train-job.yaml'][1]); job['spec']['completions'] = '2'
    with pytest.raises(kubernetes_validate.ValidationError): k8s_validate(job)

def test_every_container_names_an_image():
    "Kubernetes' schema leaves `image` optional (controllers may default it); mlkit's manifests always set it."
    for objs in k8s_manifests(load_settings(), image='reg/mlkit:1').values():
        for o in objs:
            spec = o.get('spec', {})
            pod = (spec.get('jobTemplate', {}).get('spec', spec)).get('template', {}).get('spec')
            for c in (pod or {}).get('containers', []): assert c.get('image'), (o['kind'], c['name'])

def test_bentoml_serves_the_probe_and_metrics_paths():
    from bentoml._internal.server import base_app
    src = inspect.getsource(base_app)
    for path in ('/livez', '/readyz', '/metrics'): assert f'"{path}"' in src, path

def test_serving_deployment_follows_settings():
    s = load_settings(shutdown_grace_s=12.5, log_max_bytes=1000, log_required=True)
    dep, svc, hpa, pdb = k8s_manifests(s, image='reg/mlkit:7', namespace='x')['serving.yaml']
    pod = dep['spec']['template']['spec']; c = pod['containers'][0]
    assert c['image'] == 'reg/mlkit:7' and c['readinessProbe']['httpGet']['path'] == '/readyz'
    assert c['livenessProbe']['httpGet']['path'] == '/livez' and c['startupProbe']['httpGet']['path'] == '/livez'
    assert c['ports'][0]['containerPort'] == ops.PORT and c['resources']['requests'] and c['resources']['limits']
    assert c['lifecycle']['preStop']['exec']['command'] == ['sleep', str(ops.PRESTOP_S)]
    assert pod['terminationGracePeriodSeconds'] == ops.PRESTOP_S + 13 + 5        # drain + ceil(grace) + margin
    env = {e['name']: e.get('value') for e in c['env']}
    assert env['MLKIT_SHUTDOWN_GRACE_S'] == '12.5' and env['MLKIT_LOG_MAX_BYTES'] == '1000' and env['MLKIT_LOG_REQUIRED'] == 'true'
    assert 'replicas' not in dep['spec'] and hpa['spec']['scaleTargetRef']['name'] == dep['metadata']['name']
    assert hpa['spec']['metrics'][0]['resource']['name'] == 'cpu' and pdb['spec']['minAvailable'] == 1
    assert k8s_manifests(load_settings())['serving.yaml'][0]['spec']['template']['spec']['containers'][0]['image'] == 'mlkit:latest'

def test_retrain_cronjob_contract(exported):
    _, paths = exported
    (cj,) = [o for _, o in objects(paths) if o['kind'] == 'CronJob']
    assert cj['spec']['schedule'] == '30 2 * * *' and cj['spec']['concurrencyPolicy'] == 'Forbid'
    job = cj['spec']['jobTemplate']['spec']; pod = job['template']['spec']
    assert pod['restartPolicy'] == 'Never' and job['backoffLimit'] == 1
    script = pod['containers'][0]['command'][2]
    assert script.startswith('mlkit retrain --if-drift --data /data/new.parquet; rc=$?') and 'case $rc in 3|75) ' in script
    assert '75 another retrain running' in cj['metadata']['annotations']['mlkit/exit-codes']
    assert '75 another retrain running' in (paths[0].parent/'k8s'/'retrain-cronjob.yaml').read_text().split('---')[0]

@pytest.mark.skipif(not shutil.which('sh'), reason='no POSIX sh')
@pytest.mark.parametrize('rc,want', [(0, 0), (3, 0), (75, 0), (1, 1), (2, 2)])
def test_retrain_script_maps_outcomes_to_success(tmp_path, rc, want):
    (tmp_path/'mlkit').write_text(f'#!/bin/sh\nexit {rc}\n'); (tmp_path/'mlkit').chmod(0o755)
    r = subprocess.run(['sh', '-c', ops.retrain_script()], env={'PATH': f'{tmp_path}:/usr/bin:/bin'}, capture_output=True, text=True)
    assert r.returncode == want, r.stdout + r.stderr

def test_training_job_is_indexed_with_a_rendezvous_service():
    hl, job = k8s_manifests(load_settings(), namespace='t', nnodes=4)['train-job.yaml']
    spec = job['spec']; pod = spec['template']['spec']; cmd = pod['containers'][0]['command']
    assert spec['completionMode'] == 'Indexed' and spec['completions'] == spec['parallelism'] == 4
    assert hl['spec']['clusterIP'] == 'None' and pod['subdomain'] == hl['metadata']['name'] == job['metadata']['name']
    assert hl['spec']['selector'] == job['spec']['template']['metadata']['labels']
    assert cmd[:4] == ['mlkit', 'train', '--launcher', 'torchrun']
    arg = lambda f: cmd[cmd.index(f) + 1]
    assert arg('--nnodes') == '4' and arg('--node-rank') == '$(JOB_COMPLETION_INDEX)'
    assert arg('--rdzv-endpoint') == f"{job['metadata']['name']}-0.{hl['metadata']['name']}:{hl['spec']['ports'][0]['port']}"
    assert 'JOB_COMPLETION_INDEX' in [e['name'] for e in pod['containers'][0]['env']]

def test_cron_line_parses(exported):
    out, _ = exported
    lines = (out/'cron'/'mlkit-retrain.cron').read_text().splitlines()
    comments, jobs = [l for l in lines if l.startswith('#')], [l for l in lines if l and not l.startswith('#')]
    assert len(jobs) == 1 and any('75 another retrain running' in l for l in comments)
    f = jobs[0].split(None, 5)
    assert f[:5] == ['30', '2', '*', '*', '*'] and '%' not in f[5] and 'flock' not in f[5]
    assert 'mlkit retrain --if-drift --data /data/new.parquet' in f[5] and f[5].endswith('>> /var/log/mlkit-retrain.log 2>&1')
    for field, lo, hi in zip(f[:5], (0, 0, 1, 1, 0), (59, 23, 31, 12, 7)):
        assert field == '*' or lo <= int(field) <= hi
    with pytest.raises(Exception, match='5 cron fields'): cron_line('0 3 * *')

def _ini(text):
    sections, cur = {}, None
    for l in text.splitlines():
        if not l or l.startswith('#'): continue
        if m := re.fullmatch(r'\[(\w+)\]', l): cur = sections.setdefault(m[1], {}); continue
        k, v = l.split('=', 1); cur.setdefault(k, []).append(v)
    return sections

def test_systemd_units_have_their_sections_and_keys(exported):
    out, _ = exported
    svc = _ini((out/'systemd'/'mlkit-retrain.service').read_text())
    tim = _ini((out/'systemd'/'mlkit-retrain.timer').read_text())
    assert set(svc) == {'Unit', 'Service'} and set(tim) == {'Unit', 'Timer', 'Install'}
    assert svc['Service']['Type'] == ['oneshot'] and svc['Service']['SuccessExitStatus'] == ['3 75']
    assert svc['Service']['ExecStart'][0].endswith('mlkit retrain --if-drift --data /data/new.parquet')
    assert {k: v for k, v in EXIT_CODES.items() if str(k) in svc['Service']['SuccessExitStatus'][0].split()} == \
           {3: 'rejected or breach', 75: 'another retrain running'}
    assert tim['Timer']['OnCalendar'] == ['*-*-* 02:30:00'] and tim['Timer']['Persistent'] == ['true']
    assert tim['Timer']['Unit'] == ['mlkit-retrain.service'] and tim['Install']['WantedBy'] == ['timers.target']

@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='systemd-analyze not installed')
def test_systemd_analyze_verifies_the_units(tmp_path):
    exe = tmp_path/'mlkit'; exe.write_text('#!/bin/sh\n'); exe.chmod(0o755)     # verify needs an executable ExecStart
    for n, t in systemd_units('15 4 * * 1-5', workdir=str(tmp_path), mlkit=str(exe)).items(): (tmp_path/n).write_text(t)
    r = subprocess.run(['systemd-analyze', 'verify', 'mlkit-retrain.service', 'mlkit-retrain.timer'], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr   # warnings go to stderr

@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='systemd-analyze not installed')
@pytest.mark.parametrize('cron', ['0 3 * * *', '*/15 1-5 * * 1-5', '0 0 1,15 * *', '30 6 * * 0'])
def test_on_calendar_is_a_systemd_calendar(cron):
    r = subprocess.run(['systemd-analyze', 'calendar', on_calendar(cron)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and 'Next elapse' in r.stdout, r.stderr

def test_exit_code_contract_is_one_dict():
    assert EXIT_CODES == {0: 'ok', 1: 'error', 2: 'usage', 3: 'rejected or breach', 75: 'another retrain running'}
    assert set(ops.NOT_FAILURES) == {3, 75}
    for code, meaning in EXIT_CODES.items(): assert f'{code:>2} {meaning}' in ops.exit_code_notes()
