"""Shared test setup: every test's own MLKIT_HOME (autouse), the `slow` marker, and session fixtures built once per run.

`make test-fast` runs `-m "not slow"`: a test is slow when it is marked `@pytest.mark.slow`, lives in a module listed in
SLOW_MODULES, is named in SLOW_TESTS, or uses a fixture listed in SLOW_FIXTURES (a trained model, a server, a papermill run).

Session fixtures (one build per `pytest` run, shared by the xdist workers through a lock; read-only):
- `adult_data`: Adult's train and test tables and their schema.
- `adult_model`: a small Adult model folder (4,000 rows, 4 epochs): weights, schema.json, reference.parquet, card.json.
- `adult_home`: (home, tag): a MLKIT_HOME with `adult_model` registered as `adult` and promoted to production.
  A test that changes the registry or starts a server copies it: `copy_home(adult_home, dst)`, or asks for
  `adult_registered` (the copy is the test's own MLKIT_HOME)."""
import json, os, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get('PYTEST_XDIST_WORKER'):
    # two workers on two cores: one math thread each (set before torch loads; inherited by the processes tests start)
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(k, '1')

@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    "Every test gets its own MLKIT_HOME and reports folder: tests never touch a user's models or reports."
    monkeypatch.setenv('MLKIT_HOME', str(tmp_path/'mlkit_home'))
    monkeypatch.setenv('MLKIT_REPORTS', str(tmp_path/'reports'))
    # the registry sets BENTOML_HOME on first use in a process (for bentoml and its workers): one per test, undone after
    monkeypatch.setenv('BENTOML_HOME', str(tmp_path/'mlkit_home'/'bentoml'))
    monkeypatch.setenv('WANDB_MODE', os.environ.get('WANDB_MODE', 'disabled'))
    monkeypatch.delenv('MLKIT_SETTINGS', raising=False)
    yield

def mlkit_cmd(*args):
    "argv running the mlkit CLI of this venv."
    return [str(Path(sys.executable).parent/'mlkit'), *map(str, args)]

def run_mlkit(*args, env: dict|None = None):
    """`mlkit ARGS` in this process (`cli.main`, what the console script calls), with the variables `env` set meanwhile:
    a `CompletedProcess` with the exit code, stdout and stderr, as `subprocess.run(mlkit_cmd(*args), capture_output=True,
    text=True)` gives, without the 1-1.5 s a new process spends importing. For commands that run no notebook and start
    no server (`mlkit data`, `ab`, `canary report/promote`...)."""
    import contextlib, io, subprocess
    from mlkit.cli import main
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for k, v in (env or {}).items(): mp.setenv(k, str(v))
        try: code = main([str(a) for a in args])
        except SystemExit as e: code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    return subprocess.CompletedProcess(['mlkit', *map(str, args)], code, out.getvalue(), err.getvalue())

# --- the `slow` marker --------------------------------------------------------------------------------------------

# whole modules of integration tests: servers, papermill runs, torchrun, sweeps
SLOW_MODULES = {'test_contract', 'test_corpus', 'test_ddp', 'test_lifecycle', 'test_loop', 'test_serving', 'test_sweep'}
# fixtures that train a model, register one, start a server or run a notebook
SLOW_FIXTURES = {'adult_model', 'adult_home', 'adult_registered', 'home', 'server', 'mc_home', 'loop_home', 'trained',
                 'parent_dir', 'planted', 'multiclass_fit', 'single', 'exported'}

# single tests that run a notebook (papermill) or a full CLI command, by name (measured with --durations)
SLOW_TESTS = {'test_train_and_evaluate_papermill_end_to_end', 'test_failing_run_is_recorded', 'test_plain_papermill_cli',
              'test_schema_file_is_a_contract_for_train', 'test_cli_train_with_own_network', 'test_regression_monitoring_reports_rmse',
              'test_sampling_stated', 'test_exit_codes', 'test_serving_import_stays_light', 'test_bentoml_build',
              'test_streamed_run_registers_gates_and_simulates', 'test_int8_within_tolerance_and_smaller',
              'test_fp32_parity_and_same_outputs', 'test_unexportable_network_clear_error'}

# --- the order of the modules ---------------------------------------------------------------------------------------

# seconds each module's tests took in one `make pytest` on the 2-core machine (the sum of its tests' times): with
# `--dist loadfile --no-loadscope-reorder`, the xdist workers take whole modules in this order, longest first, so that
# no long module starts last while the other worker sits idle. A module not listed runs after these.
MODULE_SECONDS = {'test_loop': 180, 'test_monitoring': 144, 'test_serving': 113, 'test_train': 70, 'test_corpus': 59,
                  'test_ddp': 45, 'test_sweep': 35, 'test_optimize': 33, 'test_lifecycle': 29,
                  'test_registry': 16, 'test_cli': 20, 'test_stream': 20, 'test_contract': 19,
                  'test_byo_network': 18, 'test_explain': 10, 'test_metrics': 10, 'test_slo': 9, 'test_data': 5}

def _module(item) -> str: return item.module.__name__.rpartition('.')[2] if item.module else ''

def pytest_collection_modifyitems(config, items):
    for item in items:
        if (_module(item) in SLOW_MODULES or getattr(item, 'originalname', item.name) in SLOW_TESTS
                or SLOW_FIXTURES & set(getattr(item, 'fixturenames', ()))):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: -MODULE_SECONDS.get(_module(item), 0))     # stable: a module's own order is kept

# --- session fixtures -----------------------------------------------------------------------------------------------

def shared_dir(tmp_path_factory, name, build) -> Path:
    "A folder built once per run by `build(folder)`, shared by every xdist worker (the first builds it under a lock)."
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): root = root.parent          # the run's folder, above each worker's own
    d = root/f'shared-{name}'
    done = Path(f'{d}.built')
    with FileLock(f'{d}.lock'):
        if not done.exists():
            shutil.rmtree(d, ignore_errors=True); d.mkdir()
            build(d)
            done.touch()
    return d

@pytest.fixture(scope='session')
def adult_data():
    "(train, test, schema) of the bundled Adult data. Read-only: copy a frame before changing it."
    from mlkit.data import load_adult, infer_schema, ADULT_TARGET, ADULT_SENSITIVE
    tr, te = load_adult()
    return tr, te, infer_schema(tr, ADULT_TARGET, ADULT_SENSITIVE)

ADULT_MODEL = dict(rows=4000, epochs=4)

def _build_adult_model(d, adult_data):
    from mlkit.data import ADULT_TARGET, ADULT_SENSITIVE
    from mlkit.train import fit, TrainParams
    from mlkit.runs import evaluate_predictor
    from mlkit.monitoring import reference_sample, REFERENCE
    tr, te, s = adult_data
    r = fit(tr.sample(ADULT_MODEL['rows'], random_state=0), s, TrainParams(max_epochs=ADULT_MODEL['epochs']), progress=False, logger=False)
    r.predictor.save(d); s.save(d/'schema.json')
    reference_sample(tr, 2000).to_parquet(d/REFERENCE, index=False)
    card = dict(run_id='test', target=ADULT_TARGET, sensitive=ADULT_SENSITIVE, data='bundled:adult', seed=0, task='binary',
                data_options={}, metrics=evaluate_predictor(r.predictor, te, s, resamples=0)[0])
    (d/'card.json').write_text(json.dumps(card, default=str))

@pytest.fixture(scope='session')
def adult_model(tmp_path_factory, adult_data) -> Path:
    "A small Adult model folder (4,000 training rows, 4 epochs): the predictor, schema.json, reference.parquet and card.json. Read-only."
    return shared_dir(tmp_path_factory, 'adult-model', lambda d: _build_adult_model(d, adult_data))

def _register_adult(d, model):
    h = d/'home'
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MLKIT_HOME', str(h)); mp.setenv('BENTOML_HOME', str(h/'bentoml')); mp.delenv('MLKIT_SIGNING_KEY', raising=False)
        from mlkit.registry import register, promote
        tag = register(model, 'adult', json.loads((model/'card.json').read_text()))
        promote(tag, 'production', reason='test')
    (d/'tag').write_text(tag)

@pytest.fixture(scope='session')
def adult_home(tmp_path_factory, adult_model):
    "(home, tag): a MLKIT_HOME holding `adult_model` registered as `adult` and in production. Read-only: see `copy_home`."
    d = shared_dir(tmp_path_factory, 'adult-home', lambda d: _register_adult(d, adult_model))
    return d/'home', (d/'tag').read_text()

def copy_home(home, dst) -> tuple:
    "Copy a `(home, tag)` such as `adult_home` to the folder `dst` (created); returns `(dst, tag)`."
    src, tag = home
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    return Path(dst), tag

@pytest.fixture
def adult_registered(adult_home) -> str:
    "The tag of `adult_model`, registered and in production in this test's own MLKIT_HOME (a copy: change it freely)."
    return copy_home(adult_home, os.environ['MLKIT_HOME'])[1]
