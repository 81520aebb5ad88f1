# Two commands: `make serve` runs AtoCore on a default store; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# bytecode now: with PYTHONDONTWRITEBYTECODE set, every start would compile atocore again (~0.3 s)
	$(BIN)/python -m compileall -q atocore
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/atocore up

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
