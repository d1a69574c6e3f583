# Quick start: `make demo` then `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: demo test test-slow browser lint format bench docs clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cpdimpact needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

demo: $(VENV)/.installed
	MPLBACKEND=Agg $(BIN)/python examples/city_partnership.py --out $(OUT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests examples benchmarks
	MPLBACKEND=Agg $(BIN)/python -m pytest

test-slow: $(VENV)/.installed-test
	MPLBACKEND=Agg $(BIN)/python -m pytest -m slow

# The report in a real browser: printed to A4 by headless Chromium (no split table, nothing in
# the margins) and laid out on a 390 px phone. Needs Debian's chromium and poppler-utils
# (`apt-get install -y chromium poppler-utils`; .ci/run installs them).
browser: $(VENV)/.installed-test
	MPLBACKEND=Agg $(BIN)/python -m pytest -m browser tests/test_browser.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests examples benchmarks
	$(BIN)/ruff check --fix src tests examples benchmarks

# The documentation site: Markdown pages, API reference and examples gallery (the examples are
# shown, not run). Warnings are errors. -E rebuilds every page: Sphinx does not notice edited
# docstrings, and an incremental run would skip (and so pass) pages that warned last time.
docs: $(VENV)/.installed-docs
	MPLBACKEND=Agg $(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html
	@echo "Documentation built: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) $(OUT) build dist src/*.egg-info .pytest_cache docs/_build docs/gallery
