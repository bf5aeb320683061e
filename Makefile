# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install lint bench clean

$(BIN)/irqlint: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/irqlint

# Run irqlint on the bundled examples/ tree (exit 1 means: findings, as expected).
demo: install
	-$(BIN)/irqlint check examples/

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info
