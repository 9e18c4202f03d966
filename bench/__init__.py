"""Benchmarks of ticketsearch: each script measures the product (its space, defaults and code paths) and writes its
results under bench/results/ (bench/results/README.md says which script made which file).

Run one as `.venv/bin/python bench/NAME.py` or `.venv/bin/python -m bench.NAME` from the repository root; the
scripts import the project's packages and each other (`bench.surrogate`) by name, as installed by install.sh.
"""
