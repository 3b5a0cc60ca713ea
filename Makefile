# The two commands the README promises: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test soak lint bench bench-select clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/anode local --data-dir ./data

test: $(STAMP)
	$(BIN)/ruff check node operator tests bench
	$(BIN)/lint-imports  # the one-way layers ([tool.importlinter] in pyproject.toml)
	$(BIN)/mypy  # the packages [tool.mypy] lists
	$(BIN)/pytest $(PYTEST_ARGS)

# The model-based harness (tests/model) from a fresh seed per run, for SOAK_MINUTES (default 60);
# seeds and counts go to soak-seeds.txt.
soak: $(STAMP)
	$(BIN)/python tests/model/soak.py

lint: $(STAMP)
	$(BIN)/ruff check node operator tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/ruff format --check node operator tests bench

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-select: $(STAMP)
	$(BIN)/python -m bench.select_parquet

clean:
	rm -rf $(VENV) data
