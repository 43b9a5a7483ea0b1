# Quick start: `make demo`, then `make test`. Both create .venv on first use.
# torch is installed only when missing, from $(TORCH): the CPU wheel by default;
# `make TORCH=torch` (or any pip requirement) picks another build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flopcalc-installed

.PHONY: demo test install bench clean

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

bench: install
	$(PY) benchmarks/count_llama7b.py

clean:
	rm -rf $(VENV) build *.egg-info
