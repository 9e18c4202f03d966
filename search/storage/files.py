"""The names of the files a run folder holds: the one place that says them.

A finished run's folder: RUN_FILE (what the run is, written first), TRIALS_FILE (every trial's
rows), FRONTIER_FILE (written last: its presence marks a finished run), PARETO_PLOT, REPORT_FILE
and its figures, HOLDOUT_FILE (the held-out outputs behind every test number; FINAL_HOLDOUT_FILE the final
stage's), and where asked STUDY_FILE and CONFIRM_FILE. While it runs: the Optuna journal, the scheduler's rungs,
the shared frozen-prefix cache, and RUN_LOG where Ray or a library warned. An export folder: spaces.SPEC_FILE and
spaces.TENSORS_FILE (the spec format's own names, also each checkpoint's tensors). And how the driver writes
them, a reader never seeing half a file. Imports only the standard library: search.driver.hub reads it before
transformers loads.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RUN_FILE = "run.json"
TRIALS_FILE = "trials.parquet"
FRONTIER_FILE = "frontier.json"
STUDY_FILE = "study.csv"
CONFIRM_FILE = "confirm.csv"
PARETO_PLOT = "pareto.png"
REPORT_FILE = "report.html"
REPORT_FIGURES = "report_*.png"
HOLDOUT_FILE = "test_outputs.npz"
FINAL_HOLDOUT_FILE = "final_test_outputs.npz"  # the final stage's, by trial id
OPTUNA_JOURNAL_FILE = "optuna.journal"
SCHEDULER_STATE_FILE = "scheduler_state.json"
PREFIX_CACHE_DIR = "prefix_cache"
EXPORT_DIR = "export"
RAY_PROCESSES_FILE = "ray_processes.json"  # the local Ray a driver started, for cleaning up after a kill
RUN_LOG = "run.log"  # Ray's log records and Python's warnings while the run trained (search.driver.console)

__all__ = [
    "CONFIRM_FILE",
    "EXPORT_DIR",
    "FINAL_HOLDOUT_FILE",
    "FRONTIER_FILE",
    "HOLDOUT_FILE",
    "OPTUNA_JOURNAL_FILE",
    "PARETO_PLOT",
    "PREFIX_CACHE_DIR",
    "RAY_PROCESSES_FILE",
    "REPORT_FIGURES",
    "REPORT_FILE",
    "RUN_FILE",
    "RUN_LOG",
    "SCHEDULER_STATE_FILE",
    "STUDY_FILE",
    "TRIALS_FILE",
    "atomic_write",
    "write_json",
]


def atomic_write(path: Path, write) -> Path:
    """Write through a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: Path, data: dict) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))
