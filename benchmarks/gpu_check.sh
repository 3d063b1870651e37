#!/usr/bin/env bash
# benchmarks/gpu_check.sh [--tiny] [--out FILE]: the one-command GPU check (see gpu_check.py).
# Uses $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
exec "$python" "$here/gpu_check.py" "$@"
