"The export/clean check itself: it passes on the checkout and fails on every kind of drift."
import shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

CHECK = ROOT/'tests'/'check_generated.py'

def _copy(tmp_path):
    dst = tmp_path/'proj'
    dst.mkdir()
    shutil.copy2(ROOT/'settings.ini', dst)
    shutil.copytree(ROOT/'nbs', dst/'nbs')
    shutil.copytree(ROOT/'mlkit', dst/'mlkit', ignore=shutil.ignore_patterns('__pycache__'))
    return dst

def _run(root):
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True)

def test_checkout_in_sync():
    r = _run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr

def test_fails_when_module_edited_by_hand(tmp_path):
    p = _copy(tmp_path)
    f = p/'mlkit'/'data.py'
    f.write_text(f.read_text().replace("NA_VALUES = ['?'", "NA_VALUES = ['??'"))
    r = _run(p)
    assert r.returncode == 1
    assert 'mlkit/data.py: differs from nbdev_export' in r.stdout and "['??'" in r.stdout

def test_fails_on_hand_written_module(tmp_path):
    p = _copy(tmp_path)
    (p/'mlkit'/'extra.py').write_text('x = 1\n')
    r = _run(p)
    assert r.returncode == 1 and 'mlkit/extra.py: not produced by nbdev_export' in r.stdout

def test_fails_on_missing_module(tmp_path):
    p = _copy(tmp_path)
    (p/'mlkit'/'config.py').unlink()
    r = _run(p)
    assert r.returncode == 1 and 'mlkit/config.py: missing' in r.stdout

def test_fails_on_unclean_notebook(tmp_path):
    p = _copy(tmp_path)
    nb = p/'nbs'/'00_config.ipynb'
    nb.write_text(nb.read_text().replace('"execution_count": null', '"execution_count": 7', 1))
    r = _run(p)
    assert r.returncode == 1 and 'nbs/00_config.ipynb: not clean' in r.stdout

def test_parameters_tag_survives_clean(tmp_path):
    "settings.ini keeps papermill's `parameters` tag through nbdev_clean."
    p = _copy(tmp_path)
    import json
    nb = json.loads((p/'nbs'/'00_config.ipynb').read_text())
    nb['cells'][1]['metadata'] = {'tags': ['parameters'], 'scrolled': True}
    (p/'nbs'/'00_config.ipynb').write_text(json.dumps(nb))
    exe = Path(sys.executable).parent/'nbdev_clean'
    subprocess.run([str(exe)], cwd=p, check=True, capture_output=True)
    nb = json.loads((p/'nbs'/'00_config.ipynb').read_text())
    assert nb['cells'][1]['metadata'] == {'tags': ['parameters']}
