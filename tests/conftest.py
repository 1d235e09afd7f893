import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

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
