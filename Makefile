# Set-up and the two jobs of the README. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: venv data demo test lint bench cards clean

venv: $(VENV)/.installed

# torch 2.14.1 + torchvision 0.29.1 is the pair that imports together with timm on these machines.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Fashion-MNIST from Debian (real data for the demo and the end-to-end tests).
data:
	@if [ ! -f $(FMNIST_DIR)/t10k-images-idx3-ubyte.gz ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || \
		echo "warning: could not install Debian's dataset-fashion-mnist; tests that need it will skip"; \
	fi

demo: venv data
	$(BIN)/seedzoo demo

# The suite's budget is 10 minutes on a 2-core CPU: the slowest tests are listed so that one that grows is seen.
# Two pytest-xdist workers, each file on one worker (its module fixtures are built once); conftest gives each
# worker its share of the cores. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
test: venv data
	$(BIN)/python -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

# Style and types: ruff and mypy, configured in pyproject.toml.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# The trainer's speed, side by side in each run (ratios; see benchmarks/README.md). Figures need a quiet
# machine; `make bench BENCH_ARGS=--quick` only checks that every benchmark runs.
BENCH_ARGS ?=
bench: venv data
	$(BIN)/python benchmarks/distill_throughput.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/multi_student.py --students 2 $(BENCH_ARGS)
	$(BIN)/python benchmarks/multi_student.py --students 3 $(BENCH_ARGS)
	$(BIN)/python benchmarks/train_end_to_end.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/teacher_precision.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/bf16_kernels.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/objectives_cohort.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/cli_startup.py $(BENCH_ARGS)

cards: venv
	$(BIN)/seedzoo cards

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
