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

def test_schema_file_is_a_contract_for_train(tmp_path):
    "`mlkit data schema --out` writes the contract; `mlkit train --schema` holds a later file to it, options recorded."
    import json, numpy as np, pandas as pd
    rng = np.random.default_rng(0)
    df = pd.DataFrame(dict(row_id=np.arange(240), x=rng.normal(size=240), k=rng.choice(['u', 'v', 'w'], 240)))
    df['y'] = np.where(df.x + (df.k == 'u') > 0.3, 'hi', 'lo')
    f = tmp_path/'t.csv'; df.to_csv(f, index=False)
    s = tmp_path/'s.json'
    assert subprocess.run(mlkit_cmd('data', 'schema', '--data', f, '--target', 'y', '--id', 'row_id', '--out', s), capture_output=True).returncode == 0
    assert json.loads(s.read_text())['id_columns'] == ['row_id']
    r = subprocess.run(mlkit_cmd('train', '--data', f, '--target', 'y', '--schema', s, '-p', 'max_epochs', '1'), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pj = json.loads(next((tmp_path/'reports'/'runs').glob('*/params.json')).read_text())
    assert pj['data_options']['schema'] == str(s) and pj['schema']['id_columns'] == ['row_id']
    assert 'row_id' in pd.read_parquet(next((tmp_path/'reports'/'runs').glob('*/predictions.parquet'))).columns
    df.drop(columns=['k']).to_csv(tmp_path/'broken.csv', index=False)
    r = subprocess.run(mlkit_cmd('train', '--data', tmp_path/'broken.csv', '--target', 'y', '--schema', s), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and 'missing_column' in r.stderr and "'k'" in r.stderr, r.stderr[-2000:]

def test_ab_plan(tmp_path):
    "`mlkit ab plan` prints the sequential n per arm and in total; --json parses, and the sequential n exceeds the fixed-horizon n."
    import json
    r = subprocess.run(mlkit_cmd('ab', 'plan', '--baseline', '0.1', '--mde', '0.03'), capture_output=True, text=True)
    assert r.returncode == 0 and 'sequential test' in r.stdout and 'fixed horizon' in r.stdout, r.stdout + r.stderr
    r = subprocess.run(mlkit_cmd('ab', 'plan', '--baseline', '0.1', '--mde', '0.03', '--share', '0.5', '--json'), capture_output=True, text=True)
    p = json.loads(r.stdout)
    assert p['n_control'] + p['n_treatment'] == p['n_total'] and p['n_total'] > p['fixed_horizon_total'] > 3000, p
    assert f"{p['n_total']:,}" in subprocess.run(mlkit_cmd('ab', 'plan', '--baseline', '0.1', '--mde', '0.03', '--share', '0.5'),
                                                 capture_output=True, text=True).stdout
    r = subprocess.run(mlkit_cmd('ab', 'plan', '--baseline', '0.1', '--mde', '0'), capture_output=True, text=True)
    assert r.returncode == 2 and 'mde' in r.stderr, r.stderr
    r = subprocess.run(mlkit_cmd('ab', 'plan', '--mde', '0.03'), capture_output=True, text=True)
    assert r.returncode == 2 and '--baseline' in r.stderr
