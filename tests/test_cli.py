import json, subprocess, sys
import pytest
from pathlib import Path
from conftest import mlkit_cmd, run_mlkit
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
    r = run_mlkit('ab', 'plan', '--baseline', '0.1', '--mde', '0.03')
    assert r.returncode == 0 and 'sequential test' in r.stdout and 'fixed horizon' in r.stdout, r.stdout + r.stderr
    r = run_mlkit('ab', 'plan', '--baseline', '0.1', '--mde', '0.03', '--share', '0.5', '--json')
    p = json.loads(r.stdout)
    assert p['n_control'] + p['n_treatment'] == p['n_total'] and p['n_total'] > p['fixed_horizon_total'] > 3000, p
    assert f"{p['n_total']:,}" in run_mlkit('ab', 'plan', '--baseline', '0.1', '--mde', '0.03', '--share', '0.5').stdout
    r = run_mlkit('ab', 'plan', '--baseline', '0.1', '--mde', '0')
    assert r.returncode == 2 and 'mde' in r.stderr, r.stderr
    r = run_mlkit('ab', 'plan', '--mde', '0.03')
    assert r.returncode == 2 and '--baseline' in r.stderr

def test_help_documents_the_exit_code_contract():
    "`mlkit --help` ends with `ops.EXIT_CODES`, the one place the contract lives; a command's help does not repeat it."
    from mlkit.ops import EXIT_CODES
    r = subprocess.run(mlkit_cmd('--help'), capture_output=True, text=True)
    assert r.returncode == 0 and 'exit codes' in r.stdout, r.stdout + r.stderr
    for code, meaning in EXIT_CODES.items(): assert f"{code:>3}  {meaning}" in r.stdout, r.stdout
    assert 'exit codes' not in subprocess.run(mlkit_cmd('train', '--help'), capture_output=True, text=True).stdout

def test_train_launcher_flags_reach_train_run(monkeypatch, capsys):
    import mlkit.runs
    from mlkit.cli import main
    seen = {}
    monkeypatch.setattr(mlkit.runs, 'train_run', lambda *a, **kw: seen.update(kw) or dict(run_id='r', run_dir='d', metrics=None))
    assert main(['train', '--launcher', 'torchrun', '--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '1',
                 '--rdzv-endpoint', '10.0.0.1:29400']) == 0
    assert seen == dict(options={}, launcher='torchrun', nproc_per_node=2, nnodes=2, node_rank=1, rdzv_endpoint='10.0.0.1:29400')
    assert main(['train']) == 0 and seen['launcher'] == 'local' and seen['nproc_per_node'] == 1 and seen['rdzv_endpoint'] is None

def test_train_launcher_usage_errors():
    "Bad launcher flags exit 2 with one line naming the flag, before any data is read."
    for args, flag in ((['--launcher', 'torchrun', '--nnodes', '2'], '--rdzv-endpoint'),
                       (['--launcher', 'torchrun', '--nnodes', '2', '--node-rank', '2', '--rdzv-endpoint', 'h:29400'], '--node-rank'),
                       (['--nproc-per-node', '2'], '--launcher torchrun'), (['--launcher', 'local', '--nnodes', '2'], '--nnodes'),
                       (['--launcher', 'torchrun', '--rdzv-endpoint', 'h:port'], '--rdzv-endpoint'),
                       (['--launcher', 'mpirun'], '--launcher')):
        r = subprocess.run(mlkit_cmd('train', '--data', 'none.csv', '--target', 'y', *args), capture_output=True, text=True)
        assert r.returncode == 2 and flag in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)

def test_ops_export_flags_reach_export_ops(monkeypatch, capsys, tmp_path):
    import mlkit.ops
    from mlkit.cli import main
    seen = {}
    monkeypatch.setattr(mlkit.ops, 'export_ops', lambda *a, **kw: seen.update(args=a, kw=kw) or [tmp_path/'a.yaml'])
    assert main(['ops', 'export', '--out', str(tmp_path), '--model', 'adult:1', '--k8s', '--systemd', '--image', 'r/adult:1',
                 '--namespace', 'ml', '--schedule', '0 4 * * *', '--data', '/data/new.csv']) == 0
    assert seen['args'] == (str(tmp_path), 'docs/runbooks', 'adult:1')
    assert seen['kw'] == dict(k8s=True, cron=False, systemd=True, image='r/adult:1', namespace='ml', schedule='0 4 * * *', data='/data/new.csv')
    assert capsys.readouterr().out.split() == [str(tmp_path/'a.yaml')]
    assert main(['ops', 'export']) == 0 and seen['kw'] == dict(k8s=False, cron=False, systemd=False)   # ops' own defaults
    assert main(['ops', 'export', '--cron', '--namespace', 'ml']) == 2 and '--namespace needs --k8s' in capsys.readouterr().err

def test_ops_export_writes_and_prints_every_file(tmp_path):
    r = subprocess.run(mlkit_cmd('ops', 'export', '--out', tmp_path, '--k8s', '--cron', '--systemd'), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    paths = [l for l in r.stdout.splitlines() if l.strip()]
    assert all(Path(x).is_file() for x in paths), paths
    names = {Path(x).relative_to(tmp_path).as_posix() for x in paths}
    assert {'alerts.rules.yml', 'cron/mlkit-retrain.cron', 'systemd/mlkit-retrain.service', 'systemd/mlkit-retrain.timer'} <= names, names
    assert any(n.startswith('k8s/') for n in names), names

def test_serve_execs_the_server_with_the_grace_period(monkeypatch, capsys):
    "`mlkit serve` replaces itself with serve_args' command, whose graceful-shutdown timeout comes from shutdown_grace_s."
    import os, mlkit.serving
    from mlkit.cli import main
    execs = []
    monkeypatch.setattr(mlkit.serving, 'resolve', lambda ref: 'adult:1')
    monkeypatch.setattr(mlkit.serving, 'model_path', lambda tag: None)
    monkeypatch.setattr(mlkit.serving, 'verify_folder', lambda folder, tag: None)
    monkeypatch.setattr(os, 'execvpe', lambda f, argv, env: execs.append((f, argv, env)))
    monkeypatch.setenv('MLKIT_SHUTDOWN_GRACE_S', '11.5')
    main(['serve', '--port', '3999'])
    (f, argv, env), = execs
    assert argv[argv.index('--port') + 1] == '3999' and argv[argv.index('--timeout-graceful-shutdown') + 1] == '12'
    assert env['MLKIT_MODEL'] == 'adult:1' and argv[argv.index('serve') + 1] == 'service:MlkitService'
    assert capsys.readouterr().out.startswith('serving adult:1 on http://127.0.0.1:3999')

def test_explain_flags_reach_the_library(monkeypatch, capsys):
    import mlkit.monitoring
    from mlkit.cli import main
    seen = {}
    res = dict(model='m:1', data='reference sample', steps=32, ms_per_row=4.0, completeness=dict(max_abs_error=1e-4), rows=[],
               importance=None)
    monkeypatch.setattr(mlkit.monitoring, 'explain_model', lambda *a: seen.update(model=a) or res)
    monkeypatch.setattr(mlkit.monitoring, 'explain_request', lambda *a: seen.update(request=a) or dict(res, request_id='r1'))
    assert main(['explain', 'm:1', '--rows', '3', '--data', 'x.csv']) == 0 and seen['model'] == ('m:1', 'x.csv', 3)
    assert 'model m:1 on reference sample' in capsys.readouterr().out
    assert main(['explain', 'm:1', '--json']) == 0 and seen['model'] == ('m:1', None, 5)
    assert json.loads(capsys.readouterr().out)['model'] == 'm:1'
    assert main(['explain', '--request-id', 'r1']) == 0 and seen['request'] == ('r1',)
    assert 'request r1 answered by model m:1' in capsys.readouterr().out
    assert main(['explain']) == 2 and main(['explain', 'm:1', '--request-id', 'r1']) == 2

def test_data_commands_stream_a_large_table(tmp_path, monkeypatch, capsys):
    "`mlkit data validate` and `data schema` on a table that streams (MLKIT_STREAM_ROWS below its rows): never read whole."
    import numpy as np, pandas as pd, mlkit.data as D
    from mlkit.cli import main
    rng = np.random.default_rng(0); n = 3000
    df = pd.DataFrame(dict(x=rng.normal(size=n), k=rng.choice(['a', 'b'], n), y=rng.choice(['no', 'yes'], n)))
    (tmp_path/'t').mkdir()
    for j, ix in enumerate(np.array_split(np.arange(n), 3)): df.iloc[ix].to_parquet(tmp_path/'t'/f'p{j}.parquet', index=False)
    monkeypatch.setenv('MLKIT_STREAM_ROWS', '1000'); monkeypatch.setenv('MLKIT_QUANTILE_SAMPLE_ROWS', '500')
    monkeypatch.setattr(D, 'read_table', lambda *a, **k: pytest.fail('read the whole table'))
    assert main(['data', 'validate', '--data', str(tmp_path/'t'), '--target', 'y', '--json']) == 0
    assert json.loads(capsys.readouterr().out)['rows'] == 3000
    assert main(['data', 'schema', '--data', str(tmp_path/'t'), '--target', 'y', '--out', str(tmp_path/'s.json')]) == 0
    assert json.loads((tmp_path/'s.json').read_text())['task'] == 'binary'
