"The direction of dependencies between mlkit's modules (README, 'Dependency direction'), read from their imports."
import ast
from pathlib import Path
import mlkit

# what each module may import from mlkit (function-level imports included); a new module must be placed here
ALLOWED = {
    'config': set(),
    'stats': set(),                                                                  # numpy, scipy and statsmodels only
    'data': {'config'},
    'params': {'config', 'data'},                                                    # TrainParams, training_rows, check_launch: no torch, no Lightning
    'features': {'config', 'data'},
    'model': {'config', 'data', 'features'},
    'train': {'config', 'data', 'params', 'features', 'model'},
    'launch': {'config', 'data', 'model', 'train', 'stream'},                       # torchrun's entry point (stream: a streamed table's ranks)
    'stream': {'config', 'data', 'features', 'model', 'train'},                       # tables larger than memory: fit and score in batches
    'metrics': {'stats', 'config', 'data'},
    'explain': {'config', 'data', 'features', 'model', 'metrics'},                   # captum; never train
    'registry': {'config', 'data', 'model', 'metrics'},                            # metrics: fairness_gaps for the metadata (function level)
    'optimize': {'config', 'data', 'features', 'model', 'registry', 'metrics'},     # onnxruntime; never train (serving may import it)
    'predlog': {'config'},
    'serving': {'config', 'data', 'features', 'model', 'registry', 'predlog', 'optimize', 'explain'},  # never train, Lightning's side
    'monitoring': {'stats', 'config', 'data', 'metrics', 'model', 'registry', 'predlog', 'explain'},  # reads the log, not the service
    'slo': {'stats', 'config', 'metrics', 'monitoring', 'registry'},
    'ops': {'config', 'slo', 'monitoring', 'registry'},                              # generated operations files
    'runs': {'stats', 'config', 'data', 'params', 'features', 'model', 'train', 'metrics', 'registry', 'monitoring', 'explain', 'optimize', 'stream'},
    'sweep': {'config', 'data', 'params', 'features', 'model', 'train', 'metrics', 'registry', 'runs'},
    'gates': {'stats', 'config', 'data', 'metrics', 'model', 'registry', 'monitoring', 'runs', 'optimize'},   # promotion gates, judge, optimize_model
    'retrain': {'config', 'data', 'metrics', 'registry', 'runs', 'gates'},
    'canary': {'stats', 'config', 'data', 'metrics', 'registry', 'predlog', 'monitoring'},
    'lineage': {'config', 'registry', 'predlog'},
    'job': {'config', 'data', 'registry', 'runs', 'serving', 'gates'},                   # mlkit run
    'cli': {'stats', 'config', 'data', 'features', 'model', 'train', 'metrics', 'registry', 'predlog', 'serving', 'monitoring', 'slo', 'ops', 'runs', 'gates', 'retrain', 'canary', 'lineage', 'job', 'sweep', 'explain', 'optimize'},
}

def mlkit_imports(path: Path) -> set:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: out.add(node.module.split('.')[0])
            elif node.level == 1: out.update(a.name for a in node.names if not a.name.startswith('__'))
            elif node.module and node.module.startswith('mlkit.'): out.add(node.module.split('.')[1])
            elif node.module == 'mlkit': out.update(a.name for a in node.names if a.name != '__version__')
        elif isinstance(node, ast.Import):
            out.update(a.name.split('.')[1] for a in node.names if a.name.startswith('mlkit.'))
    return out - {path.stem}

def test_every_module_imports_only_what_its_layer_allows():
    mods = {p.stem: p for p in Path(mlkit.__file__).parent.glob('*.py') if not p.stem.startswith('_')}
    assert set(mods) == set(ALLOWED), f"place new modules in ALLOWED: {sorted(set(mods) ^ set(ALLOWED))}"
    bad = {m: sorted(mlkit_imports(p) - ALLOWED[m]) for m, p in mods.items() if mlkit_imports(p) - ALLOWED[m]}
    assert not bad, f"imports against the dependency direction: {bad}"

def test_the_check_sees_function_level_imports(tmp_path):
    p = tmp_path/'serving.py'
    p.write_text("def f():\n    from mlkit.train import fit\n    from .runs import x\n")
    assert mlkit_imports(p) == {'train', 'runs'}

def test_the_bento_requirements_cover_what_serving_imports():
    "Every third-party package imported at module level by serving and the modules it may import is pinned for the bento."
    import sys, re
    root = Path(mlkit.__file__).parent
    req = {re.split(r'[=<>~ ]', l.strip())[0].lower().replace('-', '_')
           for l in (root.parent/'bentos'/'requirements.txt').read_text().splitlines() if l.strip() and not l.startswith('#')}
    need = {}
    for m in {'serving'} | ALLOWED['serving']:
        for node in ast.parse((root/f'{m}.py').read_text()).body:       # module level: what `import mlkit.<m>` runs
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for n in names:
                top = n.split('.')[0]
                if top not in sys.stdlib_module_names and top not in ('mlkit', '__future__'): need.setdefault(top.lower(), m)
    missing = {k: v for k, v in need.items() if k not in req}
    assert not missing, f"bentos/requirements.txt lacks {missing} (package: the module importing it)"

def test_the_evaluate_workflow_and_the_launch_check_import_no_lightning():
    "The evaluate workflow's imports and `check_launch` (run by `mlkit train` before a kernel starts) do not load Lightning (~2.5 s a process)."
    import json, subprocess, sys
    nb = json.loads((Path(mlkit.__file__).parent.parent/'nbs'/'workflows'/'evaluate.ipynb').read_text())
    cell = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code' and 'from mlkit' in ''.join(c['source']))
    imports = [l for l in cell.splitlines() if l.startswith(('import ', 'from '))]
    assert 'from mlkit.params import training_rows' in imports, imports
    code = '\n'.join(imports + ['from mlkit.params import check_launch', "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'lightning'))"])
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '[]', out.stdout[-500:]
