# Two commands a newcomer needs: `make demo` (the main job) and `make test` (the suite).
# Both create .venv if missing and install everything, torch first: a CPU machine
# gets the CPU wheel and never pulls a multi-GB CUDA build. GPU users: install your
# own torch into .venv first (or pass TORCH="torch==X --index-url ..."); an existing
# torch is kept.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-tl lint demo reproduce clean-demo

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check interpeq callbacks tests benchmarks

test: lint
	WANDB_MODE=disabled WANDB_SILENT=true $(BIN)/python -m pytest tests

# TransformerLens interop in an environment of its own (TransformerLens 2.x pins numpy < 2,
# and so an older pyarrow and datasets than the main environment): docs/your-models.md.
TL_VENV ?= .venv-tl
TL_STAMP := $(TL_VENV)/.installed

$(TL_STAMP): pyproject.toml
	$(PYTHON) -m venv $(TL_VENV)
	$(TL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TL_VENV)/bin/python -c "import torch" 2>/dev/null || $(TL_VENV)/bin/python -m pip install --quiet $(TORCH)
	PYTHONWARNINGS=ignore::UserWarning $(TL_VENV)/bin/python -m pip install --quiet -e ".[dev,tl]"
	touch $(TL_STAMP)

test-tl: $(TL_STAMP)
	INTERPEQ_REQUIRE_TL=1 WANDB_MODE=disabled WANDB_SILENT=true $(TL_VENV)/bin/python -m pytest -q \
		tests/lm/test_tl_adapter.py tests/models/test_transformer_lens_format.py

demo: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/interpeq demo

# The paper's toy result at CPU scale (configs/experiment/toy_cpu.yaml); resumable.
reproduce: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/interpeq reproduce toy --scale cpu
