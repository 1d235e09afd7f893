"Bring your own network: `network='module:callable'` trains, saves its code with the model, serves from that copy."
import itertools, json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from conftest import mlkit_cmd
from mlkit.config import DataError, UsageError
from mlkit.data import infer_schema
from mlkit.model import Predictor, CODE
from mlkit.train import fit, TrainParams

NETS = '''import torch
from torch import nn

class Small(nn.Module):
    "numeric inputs and flags as they are, one embedding per categorical column, an MLP; `k` > 0: k heads"
    def __init__(self, n_num, n_flags, cardinalities, n_out, task, edges, width=8, k=0):
        super().__init__()
        self.k, self.n_out = k, n_out
        self.emb = nn.ModuleList(nn.Embedding(c, 4) for c in cardinalities)
        self.mlp = nn.Sequential(nn.Linear(n_num + n_flags + 4 * len(cardinalities), width), nn.ReLU(),
                                 nn.Linear(width, n_out * max(k, 1)))
    def body(self, x_num, x_cat):
        return self.mlp(torch.cat([x_num] + [e(x_cat[:, i]) for i, e in enumerate(self.emb)], 1))
    def forward(self, x_num, x_cat):
        out = self.body(x_num, x_cat)
        return out.view(len(out), self.k, self.n_out).mean(1) if self.k else out

class Ensemble(Small):
    def heads(self, x_num, x_cat): return self.body(x_num, x_cat).view(len(x_num), self.k, self.n_out)

class Listed(nn.Module):
    "a parameter in a plain list: not registered, not exportable"
    def __init__(self, n_num, n_flags, **kw): super().__init__(); self.w = [nn.Parameter(torch.zeros(n_num + n_flags, 1))]
    def forward(self, x_num, x_cat): return x_num @ self.w[0]

def build(**kw): return Small(**kw)
def ensemble(**kw): return Ensemble(k=3, **kw)
def narrow(**kw): return Small(**{**kw, 'n_out': 2})
def text(**kw): return 'a network'
def listed(**kw): return Listed(**kw)
NOT_CALLABLE = 3
'''
_count = itertools.count()

@pytest.fixture
def nets(tmp_path, monkeypatch):
    "The user's module, importable under a fresh name; sys.path and the module are restored after the test."
    monkeypatch.setattr(sys, 'path', list(sys.path))
    name = f'byo_nets_{next(_count)}'
    d = tmp_path/'user_code'; d.mkdir()
    (d/f'{name}.py').write_text(NETS)
    (d/f'{name}_broken.py').write_text('import not_installed_dep_xyz\n')
    sys.path.insert(0, str(d))
    yield name
    for k in (name, f'{name}_broken'): sys.modules.pop(k, None)

def table(n=240, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(dict(x=rng.normal(size=n), z=rng.normal(size=n), k=rng.choice(['u', 'v', 'w'], n)))
    df.loc[::17, 'z'] = np.nan
    score = df.x + (df.k == 'u') + 0.3 * rng.normal(size=n)
    df['y'] = pd.cut(score, classes, labels=[f'c{i}' for i in range(classes)]).astype(str)
    return df

def train(df, network, epochs=2, run_dir=None, **kw):
    p = TrainParams.make(max_epochs=epochs, network=network, **kw)
    return fit(df, infer_schema(df, 'y'), p, run_dir=run_dir, progress=False, logger=False)

def test_custom_network_trains_and_round_trips_bit_for_bit(nets, tmp_path):
    res = train(table(), f'{nets}:build', network_args='{"width": 16}')
    assert type(res.predictor.net.net).__name__ == 'Small' and res.predictor.net.net.mlp[0].out_features == 16
    files = res.predictor.save(tmp_path/'m')
    assert [f.name for f in files] == ['weights.safetensors', 'net.json', 'transform.json', f'{nets}.py']
    cfg = json.loads((tmp_path/'m'/'net.json').read_text())['config']
    assert (cfg['network'], cfg['network_args']) == (f'{nets}:build', {'width': 16})
    back = Predictor.load(tmp_path/'m')
    sd, sd2 = res.predictor.net.state_dict(), back.net.state_dict()
    assert sorted(sd) == sorted(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    rows = table(20, seed=1)
    assert back.predict(rows)['score'].tolist() == res.predictor.predict(rows)['score'].tolist()
    back.save(tmp_path/'m2')
    assert (tmp_path/'m2'/'weights.safetensors').read_bytes() == (tmp_path/'m'/'weights.safetensors').read_bytes()

def test_module_is_stored_with_the_model_and_served_from_that_copy(nets, tmp_path):
    from mlkit.registry import register, model_path, verify_folder, card, load_predictor, sha256_file
    from mlkit.serving import Scorer
    df = table()
    res = train(df, f'{nets}:build', epochs=1, run_dir=tmp_path/'run')
    infer_schema(df, 'y').save(Path(res.model_dir)/'schema.json')
    tag = register(res.model_dir, 'byo')
    mp = model_path(tag)
    assert card(tag)['network']['code'] == {f'code/{nets}.py': sha256_file(mp/CODE/f'{nets}.py')}
    # the user's module is gone: from sys.path, sys.modules and the disk
    sys.path.remove(str(tmp_path/'user_code')); sys.modules.pop(nets); (tmp_path/'user_code'/f'{nets}.py').unlink()
    rows = table(10, seed=2)
    scorer = Scorer.from_registry(tag)
    assert Path(sys.modules[nets].__file__).parent == (mp/CODE).resolve()
    got = [p['score'] for p in scorer.score(rows.drop(columns='y').to_dict('records'))]
    np.testing.assert_allclose(got, res.predictor.predict(rows)['score'], atol=1e-6)
    assert load_predictor(tag)[1].predict(rows)['score'].tolist() == res.predictor.predict(rows)['score'].tolist()
    verify_folder(mp, tag)                     # importing it wrote nothing (no __pycache__) into the model folder
    assert not (mp/CODE/'__pycache__').exists()

def test_ensemble_heads_train_each_member(nets):
    res = train(table(180, classes=3), f'{nets}:ensemble', epochs=1)
    assert hasattr(res.predictor.net, 'heads') and res.predictor.predict(table(5, 3, seed=3))['proba'].shape == (5, 3)

ERRORS = [  # (network, network_args, error class, the one line names...)
    ('{m}', '', UsageError, "unknown network '{m}': use tabm, mlp or 'module:callable'"),
    ('{m}.py:build()', '', UsageError, "network '{m}.py:build()' is not 'tabm', 'mlp' or 'module:callable' (e.g. 'my_pkg.nets:build')"),
    ('not_a_module_xyz:build', '', DataError, "network not_a_module_xyz:build: cannot import module 'not_a_module_xyz': No module named 'not_a_module_xyz'"),
    ('{m}_broken:build', '', DataError, "cannot import module '{m}_broken': No module named 'not_installed_dep_xyz'"),
    ('{m}:nope', '', DataError, "network {m}:nope: module '{m}' has no attribute 'nope'"),
    ('{m}:NOT_CALLABLE', '', DataError, "network {m}:NOT_CALLABLE: {m}.NOT_CALLABLE is not callable (it is a int)"),
    ('{m}:text', '', DataError, "network {m}:text returns a str, not a torch.nn.Module"),
    ('{m}:narrow', '', DataError, "network {m}:narrow returns shape [2, 2] but a binary task needs [n] or [n, 1]"),
    ('{m}:listed', '', DataError, "network {m}:listed does not export (serving scores its traced graph): RuntimeError: Cannot insert a Tensor that requires grad"),
    ('{m}:build', '{"depth": 3}', DataError, "network {m}:build: calling it fails: TypeError:"),
    ('{m}:build', '[8]', UsageError, "network_args must be a JSON object"),
    ('{m}:build', '{"n_out": 3}', UsageError, "network_args cannot set n_out"),
]

@pytest.mark.parametrize('network,args,cls,msg', ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_each_error_is_one_line_naming_the_problem(nets, network, args, cls, msg):
    with pytest.raises(cls) as e: train(table(120), network.format(m=nets), network_args=args)
    assert msg.format(m=nets) in str(e.value) and '\n' not in str(e.value), str(e.value)

def test_multiclass_network_of_the_wrong_width_is_rejected(nets):
    with pytest.raises(DataError, match=r"returns shape \[2, 2\] but a multiclass task needs \[n, 3\]"):
        train(table(150, classes=3), f'{nets}:narrow')
    assert train(table(150, classes=3), f'{nets}:build', epochs=1).predictor.predict(table(4, 3))['proba'].shape == (4, 3)

def test_cli_train_with_own_network(tmp_path):
    "`mlkit train -p network mod:fn` from the folder holding the module: trained, evaluated, registered with its code."
    (tmp_path/'cli_nets.py').write_text(NETS)
    table().to_csv(tmp_path/'t.csv', index=False)
    r = subprocess.run(mlkit_cmd('train', '--data', 't.csv', '--target', 'y', '-p', 'network', 'cli_nets:build',
                                 '-p', 'network_args', '{"width": 4}', '-p', 'max_epochs', '1'),
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    model = next((tmp_path/'reports'/'runs').glob('*/model'))
    assert json.loads((model/'net.json').read_text())['config']['network_args'] == {'width': 4}
    assert (model/CODE/'cli_nets.py').read_text() == NETS
    assert 'registered ' in r.stdout     # the evaluate notebook loaded it from the run's model folder, then the registry took it
