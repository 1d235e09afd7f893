"Registry: verified loading, signatures, crash-safe aliases, the models CLI, and bentoml build."
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import mlkit_cmd
from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
from mlkit.train import fit, TrainParams

@pytest.fixture(scope='module')
def trained(adult_model):
    "A trained Adult model folder: conftest's session `adult_model` (read-only; `register` copies it)."
    return adult_model

@pytest.fixture
def reg(monkeypatch, tmp_path):
    monkeypatch.delenv('BENTOML_HOME', raising=False)
    monkeypatch.delenv('MLKIT_SIGNING_KEY', raising=False)
    import mlkit.registry as R
    return R

def _bentoml_env(tmp):
    env = {**os.environ}
    env.pop('BENTOML_HOME', None)
    return env

def test_store_under_mlkit_home(reg, trained):
    tag = reg.register(trained, 'adult')
    assert str(reg.model_path(tag)).startswith(os.environ['MLKIT_HOME'])
    r = subprocess.run([str(Path(sys.executable).parent/'bentoml'), 'models', 'list'], capture_output=True, text=True,
                       env={**os.environ, 'BENTOML_HOME': str(reg.bentoml_home()), 'BENTOML_DO_NOT_TRACK': 'True'})
    assert tag.split(':')[1] in r.stdout

@pytest.mark.parametrize('damage', ['flip', 'truncate', 'delete', 'extra', 'manifest'])
def test_tampered_model_refused_naming_the_file(reg, trained, damage):
    tag = reg.register(trained, 'adult')
    p = reg.model_path(tag)
    w = p/'weights.safetensors'
    if damage == 'flip': b = bytearray(w.read_bytes()); b[len(b) // 2] ^= 0x40; w.write_bytes(bytes(b)); want = 'weights.safetensors fails its sha256'
    elif damage == 'truncate': w.write_bytes(w.read_bytes()[:-10]); want = 'weights.safetensors has'
    elif damage == 'delete': (p/'transform.json').unlink(); want = 'transform.json is missing'
    elif damage == 'extra': (p/'evil.py').write_text('x'); want = 'evil.py'
    else: (p/'manifest.json').unlink(); want = 'manifest.json is missing'
    with pytest.raises(reg.ModelError, match=want.replace('.', r'\.')): reg.load_predictor(tag)
    with pytest.raises(reg.ModelError): reg.promote(tag)

def test_serve_refuses_tampered_model(reg, trained):
    tag = reg.register(trained, 'adult')
    reg.promote(tag)
    w = reg.model_path(tag)/'weights.safetensors'
    b = bytearray(w.read_bytes()); b[-5] ^= 1; w.write_bytes(bytes(b))
    r = subprocess.run(mlkit_cmd('serve', '--port', '0'), capture_output=True, text=True, timeout=60, env=_bentoml_env(None))
    assert r.returncode == 1 and 'weights.safetensors fails its sha256' in r.stderr and 'Traceback' not in r.stderr

def test_hmac_signature(reg, trained, monkeypatch):
    monkeypatch.setenv('MLKIT_SIGNING_KEY', 'key-1')
    tag = reg.register(trained, 'adult')
    assert reg.load_predictor(tag)[0] == tag
    monkeypatch.setenv('MLKIT_SIGNING_KEY', 'key-2')
    with pytest.raises(reg.ModelError, match='signature does not match'): reg.load_predictor(tag)
    monkeypatch.delenv('MLKIT_SIGNING_KEY')
    unsigned = reg.register(trained, 'adult')
    monkeypatch.setenv('MLKIT_SIGNING_KEY', 'key-1')
    with pytest.raises(reg.ModelError, match='not signed'): reg.load_predictor(unsigned)

def test_alias_history_and_rollback_cli(reg, trained):
    a, b, c = (reg.register(trained, 'adult') for _ in range(3))
    env = _bentoml_env(None)
    run = lambda *args: subprocess.run(mlkit_cmd('models', *args), capture_output=True, text=True, env=env)
    for t in (a, b, c): assert run('promote', t, '--reason', f'ship {t}').returncode == 0
    assert run('rollback', '--reason', 'bad deploy').returncode == 0
    assert reg.alias_target('production') == b
    assert run('rollback').returncode == 0 and reg.alias_target('production') == a
    h = json.loads(run('history', '--json').stdout)
    assert [(e['action'], e['from'], e['to']) for e in h] == [
        ('promote', None, a), ('promote', a, b), ('promote', b, c), ('rollback', c, b), ('rollback', b, a)]
    assert h[0]['reason'] == f'ship {a}' and h[3]['reason'] == 'bad deploy' and all(e['time'] for e in h)
    r = run('rollback'); assert r.returncode == 1 and 'no earlier target' in r.stderr
    lst = json.loads(run('list', '--json').stdout)
    assert {m['tag'] for m in lst} == {a, b, c} and [m['aliases'] for m in lst if m['tag'] == a] == [['production']]
    show = run('show', '@production'); assert show.returncode == 0 and a in show.stdout and 'verified: ok' in show.stdout
    assert run('promote', 'adult:doesnotexist').returncode == 1

PROMOTER = """
import sys
from mlkit.registry import promote, rollback
tags = sys.argv[1:]
promote(tags[0], reason='first move'); i = 1      # the first move loads what moves need
print('ready', flush=True)
while True:
    promote(tags[i % len(tags)], reason=f'move {i}'); i += 1
    if i % 3 == 0: rollback(reason=f'back {i}')
"""

def test_kill_promote_midway_keeps_alias_consistent(reg, trained):
    "SIGKILL a process that moves the alias in a tight loop, at many points: never broken, history never shrinks."
    tags = [reg.register(trained, 'adult') for _ in range(3)]
    env = _bentoml_env(None)
    rng = random.Random(0)
    seen = 0
    for k in range(8):
        p = subprocess.Popen([sys.executable, '-c', PROMOTER, *tags], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == 'ready', p.stderr.read()[-2000:]   # one move done: the tight loop starts now
        time.sleep(0.05 + rng.random() * 0.45)  # a random number of moves, then a kill at a random point of one
        p.send_signal(signal.SIGKILL); p.wait()
        st = reg.read_alias('production')          # parses: never a torn file
        h = st['history']
        assert len(h) >= seen, 'history lost lines'
        assert h[-1]['to'] == st['target'] and st['target'] in tags
        assert all(h[i]['to'] == h[i + 1]['from'] for i in range(len(h) - 1)), 'history chain broken'
        seen = len(h)
    assert seen > 8
    reg.promote(tags[0])     # a later move still works after the kills
    assert reg.alias_target('production') == tags[0]

def test_bentoml_build(reg, trained, tmp_path):
    tag = reg.register(trained, 'adult')
    reg.promote(tag)
    r = subprocess.run(mlkit_cmd('build'), capture_output=True, text=True, timeout=300, env=_bentoml_env(None))
    assert r.returncode == 0, r.stderr[-2000:]
    bento = r.stdout.strip().splitlines()[-1]
    assert bento.startswith('mlkit:')
    d = reg.bentoml_home()/'bentos'/'mlkit'/bento.split(':')[1]
    y = (d/'bento.yaml').read_text()
    assert tag in y and (d/'src'/'bentos'/'service.py').exists() and (d/'src'/'mlkit'/'serving.py').exists()
    assert not (d/'src'/'mlkit'/'datasets').exists() and not (d/'src'/'nbs').exists()
    assert (d/'src'/'bentos'/'model_tag.txt').read_text().strip() == tag
    req = (d/'env'/'python'/'requirements.txt').read_text()
    assert 'torch==2.13.0' in req and 'lightning' not in req and 'wandb' not in req
