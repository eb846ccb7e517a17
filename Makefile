# The two commands a new user types: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: run test lint bench install install-test chromium clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# A CPU torch first when torch is missing: an unpinned resolve of torch pulls a ~3 GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "The browser tests need /usr/bin/chromium: run 'sudo apt-get install -y chromium' (Debian/Ubuntu)," \
	       "or set SDUNET_CHROMIUM to a Chromium binary."; exit 1; \
	fi

run: install
	$(VENV)/bin/sdunet-explorer serve --host $(HOST) --port $(PORT)

test: install-test chromium
	$(VENV)/bin/ruff check .
	node --test tests/js/  # the page's pure modules, with Node's own test runner
	$(PY) -m pytest

lint: install-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install-test chromium
	$(PY) -m pip install -q -e '.[test,bench]'
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || \
	  echo "wrk is missing (apt-get install wrk): the API benchmark will be skipped"
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
