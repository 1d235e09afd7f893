# mlkit: `make run` (install + the main job on the bundled data), `make test` (install + every test),
# `make test-fast` (the tests not marked slow: the edit loop).
# The install is idempotent: it reruns only when setup.py, settings.ini or constraints.txt change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlkit-installed
export MLKIT_TEST_HOME := $(CURDIR)/.mlkit/test

.PHONY: install run test test-fast check-generated nbtest pytest export clean bench corpus docs docs-nbdev

$(STAMP): setup.py settings.ini constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=25'
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name mlkit --display-name 'mlkit (.venv)' >/dev/null
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/mlkit run

test: install check-generated nbtest pytest

check-generated: install
	$(BIN)/python tests/check_generated.py

# every notebook of nbs/ and nbs/tutorials/, executed once as nbdev_test would (2 workers; MLKIT_HOME and MLKIT_REPORTS
# under $(MLKIT_TEST_HOME), WANDB_MODE=disabled); the executed copies (_build/executed/) are what `make docs` renders
nbtest: install
	rm -rf $(MLKIT_TEST_HOME) && mkdir -p $(MLKIT_TEST_HOME)
	$(BIN)/python docs/build.py exec --workers 2

# the documentation site in _site/, offline: re-executes only notebooks changed since their executed copy, fails on a
# broken cell or a broken local link (docs/build.py). `nbdev_docs` still works where Quarto is installed.
docs: install
	$(BIN)/python docs/build.py site --workers 2

# what would stop `nbdev_docs` before Quarto renders: nbdev's own processing (show_doc execution) of every notebook
docs-nbdev: install
	$(BIN)/python docs/build.py nbdev-check --workers 2

# every test, 2 xdist workers (a test file stays on one worker: its module fixtures are built once); the 15 slowest listed
pytest: install
	$(BIN)/pytest tests -q -n 2 --dist loadfile --no-loadscope-reorder --durations 15

# the edit loop (under 2 minutes): the tests not marked slow (tests/conftest.py says which are), 2 workers
test-fast: install
	$(BIN)/pytest tests -q -n 2 -m 'not slow'

# after editing notebooks: clean them and regenerate mlkit/
export: install
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export

clean:
	rm -rf $(VENV) .mlkit build *.egg-info _build _site

# the full `mlkit run` on every table of tests/corpus.py (also part of `make bench`): reports/corpus/<stamp>/results.{json,md},
# copied to bench/results/corpus.{json,md}; e.g. make corpus CORPUS_ARGS='--max-rows 5000 --epochs 2'
corpus: install
	$(BIN)/python bench/corpus.py $(CORPUS_ARGS)

# benchmarks (not part of `make test`): reports/bench/<name>.json + README.md, copied to bench/results/; about 12 minutes
bench: install
	$(BIN)/python bench/run_all.py
