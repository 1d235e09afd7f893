#!/usr/bin/env python
"""Fail when mlkit/ is not exactly what `nbdev_export` makes of nbs/, or when a notebook is not `nbdev_clean`.

Works on a copy of the project in a temporary folder, so the checkout is never modified:
1. copy settings.ini, nbs/ and mlkit/ (without its .py files), run nbdev_export there and compare every .py file;
2. run nbdev_clean on the copied notebooks and compare them byte for byte with the originals.
Usage: check_generated.py [PROJECT_ROOT]   (exit 0: in sync; 1: out of sync, every difference listed)"""
import difflib, filecmp, os, shutil, subprocess, sys, tempfile
from pathlib import Path

def _bin(name):
    exe = Path(sys.executable).parent/name
    return str(exe) if exe.exists() else name

def _pyfiles(root: Path):
    return {p.relative_to(root).as_posix() for p in root.rglob('*.py') if '__pycache__' not in p.parts}

def check(root: Path) -> list:
    problems = []
    lib, nbs = root/'mlkit', root/'nbs'
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        shutil.copy2(root/'settings.ini', tmp/'settings.ini')
        shutil.copytree(nbs, tmp/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
        shutil.copytree(lib, tmp/'mlkit', ignore=shutil.ignore_patterns('*.py', '__pycache__'))
        env = {**os.environ}; env.pop('IN_TEST', None)
        for cmd in (['nbdev_export'], ['nbdev_clean']):
            r = subprocess.run([_bin(cmd[0])], cwd=tmp, env=env, capture_output=True, text=True)
            if r.returncode: return [f"{cmd[0]} failed: {r.stderr.strip()[-500:]}"]
        have, want = _pyfiles(lib), _pyfiles(tmp/'mlkit')
        for f in sorted(have - want): problems.append(f"mlkit/{f}: not produced by nbdev_export (hand-written or stale)")
        for f in sorted(want - have): problems.append(f"mlkit/{f}: missing; run nbdev_export and commit it")
        for f in sorted(have & want):
            a, b = (lib/f).read_text(), (tmp/'mlkit'/f).read_text()
            if a != b:
                diff = list(difflib.unified_diff(b.splitlines(), a.splitlines(), 'export', 'mlkit/' + f, lineterm='', n=0))
                problems.append(f"mlkit/{f}: differs from nbdev_export of nbs/ (edit the notebook, not the module):\n    " +
                                '\n    '.join(diff[:12]))
        for nb in sorted(nbs.rglob('*.ipynb')):
            if '.ipynb_checkpoints' in nb.parts: continue
            rel = nb.relative_to(nbs)
            if not filecmp.cmp(nb, tmp/'nbs'/rel, shallow=False):
                problems.append(f"nbs/{rel.as_posix()}: not clean; run nbdev_clean and commit it")
    return problems

if __name__ == '__main__':
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    probs = check(root)
    for p in probs: print(p)
    print('generated code and notebooks are in sync' if not probs else f"{len(probs)} problem(s): mlkit/ must be a fresh nbdev_export of clean notebooks")
    sys.exit(1 if probs else 0)
