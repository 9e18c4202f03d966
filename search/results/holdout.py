"""Honest numbers: each chosen sub-network scored once, after the search, on rows it never saw.

The search chooses on the validation split only; the trials do not even receive the test split
(search.driver.trials.trial_data). When the search has ended, every frontier point and every reference point that
trained to the full budget is evaluated once on the test split (its last checkpoint; the driver scores them:
search.driver.finish.evaluate_holdout), with a bootstrap interval over test rows; each is compared
with the best of them and with full fine-tuning on the same rows (a paired randomisation test,
search.results.uncertainty), which says whether it is *not significantly worse*. The outputs are kept
(`test_outputs.npz`) so that
every figure can be recomputed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from search.results.table import COMPLETED, final_rows
from search.results.uncertainty import CONFIDENCE, SIGNIFICANCE, interval, not_worse, paired_test
from trainables import predict_saved

TEST_COLUMNS = ("test_metric", "test_low", "test_high", "not_worse_than_best", "not_worse_than_full")


def _preset_name(preset) -> str | None:
    return preset.split("#", 1)[0] if isinstance(preset, str) else None


def holdout_trials(frame: pd.DataFrame, front: pd.DataFrame) -> pd.DataFrame:
    """Final rows of the trials to score on the test split: the frontier's, and every reference point
    that completed the full budget."""
    done = final_rows(frame)
    done = done[(done["status"] == COMPLETED) & done["checkpoint"].notna()]
    chosen = done["trial_id"].isin(set(front["trial_id"])) | done["preset"].notna()
    return done[chosen].sort_values(["trainable_params", "metric"], ascending=[True, False]).reset_index(drop=True)


def compare(outputs: dict[str, np.ndarray], labels: np.ndarray, trials: pd.DataFrame, metric: str,
            regression: bool) -> pd.DataFrame:
    """One row per scored trial: its test metric, interval, and whether it is not significantly worse than
    the best scored trial and than full fine-tuning (the `full` reference point of seed 0; None without one)."""
    rows = []
    for trial_id in outputs:
        score = interval(outputs[trial_id], labels, metric, regression)
        rows.append({"trial_id": trial_id, "test_metric": score.value, "test_low": score.low, "test_high": score.high})
    table = pd.DataFrame(rows, columns=["trial_id", "test_metric", "test_low", "test_high"])
    if table.empty:
        return table.assign(not_worse_than_best=None, not_worse_than_full=None)
    best = table.loc[table["test_metric"].idxmax(), "trial_id"]
    full = [t for t, p in zip(trials["trial_id"], trials["preset"]) if _preset_name(p) == "full" and t in outputs]
    for column, other in (("not_worse_than_best", best), ("not_worse_than_full", full[0] if full else None)):
        table[column] = [
            None if other is None else
            bool(t == other or not_worse(paired_test(outputs[t], outputs[other], labels, metric, regression)))
            for t in table["trial_id"]
        ]
    return table


def with_test_columns(frame: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    """trials.parquet's rows with the test columns on each scored trial's final row (NaN elsewhere)."""
    frame = frame.drop(columns=[c for c in TEST_COLUMNS if c in frame.columns])
    if table is None or table.empty:
        return frame
    scored = frame[frame["final"]].reset_index()[["index", "trial_id"]].merge(table, on="trial_id")
    for column in TEST_COLUMNS:
        frame[column] = pd.Series(scored[column].to_numpy(), index=scored["index"].to_numpy()).reindex(frame.index)
        if column.startswith("not_worse"):
            frame[column] = frame[column].astype("object")
    return frame


def test_summary(table: pd.DataFrame | None, split: str, rows: int) -> dict | None:
    """frontier.json's `test` block: what was scored, on which rows, and how."""
    if table is None:
        return None
    return {"split": split, "rows": int(rows), "confidence": CONFIDENCE,
            "interval": "percentile bootstrap over test rows (scipy.stats.bootstrap, 2,000 resamples)",
            "comparison": f"one-sided paired randomisation test on the same rows (scipy.stats.permutation_test); "
                          f"not significantly worse: p >= {SIGNIFICANCE}",
            "best_trial": str(table.loc[table["test_metric"].idxmax(), "trial_id"]) if len(table) else None}


def score_checkpoints(checkpoints: Mapping[Any, tuple[list, dict]], split, settings, config) -> dict:
    """Outputs on `split` (a run's test rows) of each checkpoint, key -> (units, trained tensors); `settings`: the
    trials' TrialSettings, `config`: the run's RunConfig (where the scoring runs).

    A local run whose trials use no GPU scores in this process, on all of its CPUs (it has torch and the model at
    hand; a Ray task would start a process and import both again, which costs more than scoring a small model); a
    cluster run, or one with GPUs, scores as Ray tasks with the trials' resources."""
    if config.address is None and not config.gpus_per_trial:
        return _score_here(checkpoints, split, settings)
    return _score_as_tasks(checkpoints, split, settings, config)


def _score_here(checkpoints: Mapping, test, settings) -> dict:
    import os

    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    here = dataclasses.replace(settings, model_files=None, threads=cpus)  # the driver's own copy of the model
    threads = torch.get_num_threads()
    try:
        return {trial_id: predict_saved(units, tensors, test, here)
                for trial_id, (units, tensors) in checkpoints.items()}
    finally:
        torch.set_num_threads(threads)


def _score_as_tasks(checkpoints: Mapping, test, settings, config) -> dict:
    import ray

    task = ray.remote(predict_saved).options(num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial,
                                             max_retries=config.max_failures)
    test_ref = ray.put(test)
    futures = {trial_id: task.remote(units, tensors, test_ref, settings)
               for trial_id, (units, tensors) in checkpoints.items()}
    return dict(zip(futures, ray.get(list(futures.values()))))
