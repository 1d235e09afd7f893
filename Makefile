# mlkit: `make run` (install + the main job on the bundled data), `make test` (install + every test).
# The install is idempotent: it reruns only when setup.py, settings.ini or constraints.txt change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlkit-installed
export MLKIT_TEST_HOME := $(CURDIR)/.mlkit/test

.PHONY: install run test check-generated nbtest pytest export clean bench corpus

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

nbtest: install
	rm -rf $(MLKIT_TEST_HOME) && mkdir -p $(MLKIT_TEST_HOME)
	MLKIT_HOME=$(MLKIT_TEST_HOME)/home MLKIT_REPORTS=$(MLKIT_TEST_HOME)/reports WANDB_MODE=disabled $(BIN)/nbdev_test
	MLKIT_HOME=$(MLKIT_TEST_HOME)/home MLKIT_REPORTS=$(MLKIT_TEST_HOME)/reports WANDB_MODE=disabled $(BIN)/nbdev_test --path nbs/tutorials

pytest: install
	$(BIN)/pytest tests -q

# after editing notebooks: clean them and regenerate mlkit/
export: install
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export

clean:
	rm -rf $(VENV) .mlkit build *.egg-info

# the full `mlkit run` on every table of tests/corpus.py (also part of `make bench`): reports/corpus/<stamp>/results.{json,md},
# copied to bench/results/corpus.{json,md}; e.g. make corpus CORPUS_ARGS='--max-rows 5000 --epochs 2'
corpus: install
	$(BIN)/python bench/corpus.py $(CORPUS_ARGS)

# benchmarks (not part of `make test`): reports/bench/<name>.json + README.md, copied to bench/results/; about 12 minutes
bench: install
	$(BIN)/python bench/run_all.py
