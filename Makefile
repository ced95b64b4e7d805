# The two commands of the README: `make demo` and `make test`.
# Each creates .venv with Python 3.12 (pyenv reads .python-version) when it is missing.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test browser clean

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
install-test: $(VENV)/.installed-test browser

# The app's browser test drives Debian's chromium through Playwright (never `playwright install`,
# which downloads a browser build). Installed with apt when missing: as root, or through sudo.
# The page's front-end bundle comes from the npm registry into Solara's cache, once.
browser: $(VENV)/.installed-test
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing=" chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  echo "Installing$$missing with apt-get"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	$(BIN)/python -m gtmsim.app.assets

demo: install
	$(BIN)/gtmsim run baseline --out results/baseline
	$(BIN)/gtmsim compare siloed aligned --reps 10 --out results/siloed-vs-aligned --resume
	$(BIN)/gtmsim report results/siloed-vs-aligned --pptx
	$(BIN)/gtmsim export results/siloed-vs-aligned --xlsx

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results
