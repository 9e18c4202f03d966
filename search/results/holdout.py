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

import numpy as np
import pandas as pd

from search.results.table import COMPLETED, final_rows
from search.results.uncertainty import CONFIDENCE, SIGNIFICANCE, interval, not_worse, paired_test

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
