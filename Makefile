# Quick start: `make demo`, then `make test`. Both create .venv on first use.
# torch is installed only when missing, from $(TORCH): the CPU wheel by default;
# `make TORCH=torch` (or any pip requirement) picks another build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flopcalc-installed

.PHONY: demo test test-fast install bench examples dist dist-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/flopcalc count examples/cnn.py:build --input 8x3x32x32

test: install
	$(PY) -m pytest -q

# the same suite without the tests marked `slow` (the docs' commands, full-size Hugging Face configs)
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# the exported models the docs count (ONNX needs the onnx extra), written on demand, never committed
examples: install
	$(PY) examples/export.py

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
