#!/usr/bin/env bash
# worldkit's set-up, into the active Python environment (the README makes a .venv first).
# torch comes first, the build this machine needs: the CUDA build where a GPU driver is found,
# otherwise a CPU wheel pip is already set up to find, otherwise the CPU build from PyTorch's
# index (a plain `pip install torch` would pull a multi-GB CUDA build onto a CPU-only machine).
set -euo pipefail
cd "$(dirname "$0")"
if command -v nvidia-smi >/dev/null 2>&1; then
    pip install torch==2.13.0
elif ! pip install --no-index --no-deps torch==2.13.0 >/dev/null 2>&1; then
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
pip install -e ".[dev,docs]"
