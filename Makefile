# The two commands of the README: `make demo` and `make test`.
# Each creates .venv with Python 3.12 (pyenv reads .python-version) when it is missing.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "gtmsim needs Python 3.12+, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The model's compiled kernels are built once, here, into numba's on-disk cache (about 30 s),
# so that the first run does not pay for it.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m gtmsim.kernels
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m gtmsim.kernels
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/gtmsim run baseline --out results/baseline
	$(BIN)/gtmsim compare siloed aligned --reps 10 --out results/siloed-vs-aligned --resume
	$(BIN)/gtmsim report results/siloed-vs-aligned --pptx
	$(BIN)/gtmsim export results/siloed-vs-aligned --xlsx

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results
