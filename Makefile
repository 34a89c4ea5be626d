# Two entry points for a fresh machine: `make dataset` and `make test`.
# Both create the virtual environment on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CLI := $(VENV)/bin/ecg-instruct
STAMP := $(VENV)/.installed
RAW ?= data/raw
OUT ?= out/meit
RECIPE ?= pipelines/meit.yaml
BENCH_BUILD_N ?= 20000

.PHONY: venv dataset test lint bench download clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	# torch first, pinned to the CPU wheel, so the [train] range is met without a CUDA download.
	$(PIP) install -q "torch==2.13.0" "setuptools>=77,<82" 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e ".[train,dev,hf]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import ecg_instruct, torch, datasets, wfdb"
	touch $(STAMP)

venv: $(STAMP)

dataset: $(STAMP)
	$(CLI) build --raw-dir $(RAW) --out $(OUT) --recipe $(RECIPE) --sample-fallback data/sample

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ecg_instruct tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_reports.py
	bash -o pipefail -c '$(PY) benchmarks/bench_signals.py | tee $(VENV)/bench-signals.log'
	# the whole build (20,000 records; BENCH_BUILD_N to change), then the two tracked last
	# lines: `end-to-end build speedup vs naive: X` and `signal-stage speedup vs naive: Y`
	$(PY) benchmarks/bench_build.py --n $(BENCH_BUILD_N)
	@tail -n 1 $(VENV)/bench-signals.log

download: $(STAMP)
	$(CLI) download ptbxl --out $(RAW) --rate 500
	$(CLI) download mimic --out $(RAW) --split test

clean:
	rm -rf out data/sample
