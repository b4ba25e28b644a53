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

.PHONY: setup test lint demo reproduce clean-demo

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

demo: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/interpeq demo

# The paper's toy result at CPU scale (configs/experiments/toy_cpu.yaml); resumable.
reproduce: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/interpeq reproduce toy --scale cpu
