# Quick start: `make demo`, then `make test`. Both create .venv on first use.
# torch is installed only when missing, from $(TORCH): the CPU wheel by default;
# `make TORCH=torch` (or any pip requirement) picks another build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flopcalc-installed

.PHONY: demo test test-fast lint install bench examples pictures dist dist-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# on a terminal, say what the minutes of a first install are spent on (on stderr; a log gets nothing)
SAY = @if [ -t 2 ]; then echo "$(1)" >&2; fi

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || { if [ -t 2 ]; then echo "installing $(TORCH) into $(VENV) (a few minutes, once)" >&2; fi; \
		$(PY) -m pip install -q "$(TORCH)"; }
	$(call SAY,installing flopcalc and its test tools into $(VENV))
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/flopcalc count examples/cnn.py:build --input 8x3x32x32
	$(VENV)/bin/flopcalc count examples/cnn.py:build --input 8x3x32x32 --format html --output report.html
	@echo "report.html: the same count drawn as a page (open it in a browser; it needs no network)"

# lint first: ruff (lint and format) and mypy --strict on the public surface, then the whole suite
test: lint
	$(PY) -m pytest -q

# the same suite without the tests marked `slow` (the docs' commands, full-size Hugging Face configs)
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# ruff's linter, mypy on the public surface and the import-linter layers, as configured in pyproject.toml
# (this only checks: it never rewrites a file)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# the exported models the docs count (ONNX needs the onnx extra), written on demand, never committed
examples: install
	$(PY) examples/export.py

# the pictures README.md and docs/ show: each command's HTML report photographed in headless Chromium
pictures: install
	$(PY) examples/pictures.py

# a wheel and an sdist in dist/, the GPU catalogue inside the wheel
dist: install
	rm -rf dist
	$(PY) -c "import setuptools.build_meta as b; b.build_wheel('dist'); b.build_sdist('dist')"
	$(PY) -c "import sys, zipfile, glob; names = zipfile.ZipFile(glob.glob('dist/*.whl')[0]).namelist(); \
		missing = [n for n in ('flopcalc/gpu_specs/nvidia.yaml', 'flopcalc/data/thresholds.yaml') if n not in names]; \
		sys.exit('the wheel lacks ' + ', '.join(missing) if missing else 0)"

# install the wheel in a fresh venv outside the checkout (torch and the other dependencies are
# taken from this project's venv through a .pth file, so nothing is downloaded) and count an example
dist-check: dist
	$(PY) -m pytest -q tests/test_docs_install.py

bench: install
	$(PY) benchmarks/count_llama7b.py

clean:
	rm -rf $(VENV) build *.egg-info
