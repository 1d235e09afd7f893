"The export/clean check itself: it passes on the checkout and names every kind of drift (one run of the check on a copy with all four)."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

CHECK = ROOT/'tests'/'check_generated.py'

def _copy(tmp_path, notebooks=None):
    "settings.ini, mlkit/ and nbs/ (or only the `notebooks` named) in a new project folder."
    dst = tmp_path/'proj'
    dst.mkdir()
    shutil.copy2(ROOT/'settings.ini', dst)
    if notebooks is None: shutil.copytree(ROOT/'nbs', dst/'nbs')
    else:
        (dst/'nbs').mkdir()
        for nb in notebooks: shutil.copy2(ROOT/'nbs'/nb, dst/'nbs'/nb)
    shutil.copytree(ROOT/'mlkit', dst/'mlkit', ignore=shutil.ignore_patterns('__pycache__'))
    return dst

def _run(root):
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True)

@pytest.mark.slow
def test_checkout_in_sync():
    r = _run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr

@pytest.mark.slow
def test_fails_on_each_kind_of_drift(tmp_path):
    "A module edited by hand, a hand-written module, a missing module and an unclean notebook: one line each, exit 1."
    p = _copy(tmp_path)
    f = p/'mlkit'/'data.py'
    f.write_text(f.read_text().replace("NA_VALUES = ['?'", "NA_VALUES = ['??'"))
    (p/'mlkit'/'extra.py').write_text('x = 1\n')
    (p/'mlkit'/'config.py').unlink()
    nb = p/'nbs'/'00_config.ipynb'
    nb.write_text(nb.read_text().replace('"execution_count": null', '"execution_count": 7', 1))
    r = _run(p)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert 'mlkit/data.py: differs from nbdev_export' in out and "['??'" in out                 # edited by hand
    assert 'mlkit/extra.py: not produced by nbdev_export' in out                               # hand-written
    assert 'mlkit/config.py: missing' in out                                                   # missing
    assert 'nbs/00_config.ipynb: not clean' in out                                             # not clean
    assert '4 problem(s)' in out, out

def test_parameters_tag_survives_clean(tmp_path):
    "settings.ini keeps papermill's `parameters` tag through nbdev_clean."
    p = _copy(tmp_path, notebooks=['00_config.ipynb'])
    nb = json.loads((p/'nbs'/'00_config.ipynb').read_text())
    nb['cells'][1]['metadata'] = {'tags': ['parameters'], 'scrolled': True}
    (p/'nbs'/'00_config.ipynb').write_text(json.dumps(nb))
    exe = Path(sys.executable).parent/'nbdev_clean'
    subprocess.run([str(exe)], cwd=p, check=True, capture_output=True)
    nb = json.loads((p/'nbs'/'00_config.ipynb').read_text())
    assert nb['cells'][1]['metadata'] == {'tags': ['parameters']}
