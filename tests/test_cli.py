import subprocess, sys
from conftest import mlkit_cmd
from mlkit import __version__

HEAVY = ['torch', 'lightning', 'bentoml', 'evidently', 'wandb', 'pandas', 'numpy', 'papermill', 'sklearn']

def test_help_imports_nothing_heavy():
    code = ("import sys; from mlkit.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith('[]'), r.stdout + r.stderr

def test_version():
    r = subprocess.run(mlkit_cmd('--version'), capture_output=True, text=True)
    assert r.stdout.strip() == f'mlkit {__version__}'

def test_no_command_is_usage_error():
    r = subprocess.run(mlkit_cmd(), capture_output=True, text=True)
    assert r.returncode == 2 and 'usage: mlkit' in r.stdout

def test_bad_option_is_usage_error():
    r = subprocess.run(mlkit_cmd('data', 'validate', '--data', 'x.csv'), capture_output=True, text=True)
    assert r.returncode == 2 and '--target' in r.stderr
