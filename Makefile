# Two entry points (see README): `make run` and `make test`.
# Both create .venv from requirements.lock on first use (PyPI only, no conda).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SNAKEMAKE_ARGS ?=
# Test workers (pytest-xdist; tests sharing a costly fixture stay on one worker; the files go out in
# tests/conftest.py's order, LONGEST_FIRST). 0: one process.
TEST_WORKERS ?= 2

.PHONY: install run report test lint format clean-results docs

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

run: install
	$(BIN)/snakemake $(SNAKEMAKE_ARGS)

report: install
	$(BIN)/snakemake report $(SNAKEMAKE_ARGS)

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: install
	$(BIN)/snakemake --lint 2>&1 | tee .lint.out; grep -q "Congratulations" .lint.out; status=$$?; rm -f .lint.out; exit $$status
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/snakefmt Snakefile workflow/rules
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the parameter reference from workflow/schemas/config.schema.yaml (tests/test_docs.py checks it).
docs: install
	PYTHONPATH=workflow $(BIN)/python -m funnel.configdoc > docs/parameters.md.tmp && mv docs/parameters.md.tmp docs/parameters.md

# Remove every result (fits, their store, tables, report) and the logs; data downloads stay.
clean-results:
	rm -rf results/*/
