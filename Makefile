# The two set-up commands: `make demo` (main job on the bundled data) and `make test`.
# Each creates .venv and installs what it needs; torch is pinned by constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -m "not slow"

.PHONY: demo test lint bench clean venv

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python pipelines/demo.py

test: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check recogan tests pipelines benchmarks
	$(BIN)/ruff format --check recogan tests pipelines benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
