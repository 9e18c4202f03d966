"""The results store: one row per reported epoch of every trial, and the frontier built from it.

`trials.parquet` is built from what Ray Tune persisted for each trial (its result log), so it
survives driver restarts; a retried trial can report an epoch twice, and the last report wins.
`frontier.json` holds the non-dominated trials that reached the full budget, nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from search.steer.pareto import hypervolume, pareto_mask
from search.storage.files import TRIALS_FILE, atomic_write
from search.storage.run_info import RunInfo
from trainables import CLASSIFICATION_METRICS, FAILED, REGRESSION_METRICS

COMPLETED, STOPPED, ERROR = "completed", "stopped", "error"


_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)


def _is_metric(key: str) -> bool:
    return key in _METRICS or any(key.startswith(m + "_") for m in _METRICS)


def trial_rows(results, metric: str, max_epochs: int, run_dir: str | Path) -> pd.DataFrame:
    """One row per (trial, epoch) from a Ray Tune ResultGrid, deduplicated, with each trial's status.

    `run_dir`: the run's folder as Ray's result paths name it (for remote storage, its path on the
    bucket: `RunLocation.fs_path`); checkpoints are recorded relative to it."""
    rows = []
    for result in results:
        config = dict(result.config or {})
        trial_id = Path(result.path).name.split("_")[1] if result.path else None
        trial_id = (result.metrics or {}).get("trial_id", trial_id)
        history = result.metrics_dataframe
        if history is None or history.empty or "epoch" not in history:
            history = pd.DataFrame(columns=["epoch", metric])
        failed = (result.metrics or {}).get(FAILED)  # a failure a retry cannot fix (trainables._failures)
        if FAILED in history:
            history = history[history[FAILED].isna()]
        history = history.dropna(subset=["epoch"]).drop_duplicates("epoch", keep="last").sort_values("epoch")
        reached = len(history) and history["epoch"].max() >= max_epochs
        status = ERROR if result.error or failed else (COMPLETED if reached else STOPPED)
        error = failed or (None if result.error is None else str(result.error).strip().splitlines()[-1][:500])
        checkpoint = None
        if result.checkpoint is not None:
            checkpoint = os.path.relpath(result.checkpoint.path, run_dir)
        base = {
            "trial_id": trial_id,
            "status": status,
            "error": error,
            "preset": config.get("preset"),
            "selection": config.get("selection"),
            "origin": config.get("origin"),  # where the proposal came from (search.steer.strategies.ORIGINS)
            "trainable_params": int(config.get("trainable_params", 0)),
            "lr": float(config.get("lr", np.nan)),
            "seed": config.get("seed"),
            "units": list(config.get("units", [])),
            "config": json.dumps(config, sort_keys=True),
        }
        if history.empty:  # failed before its first report: keep it visible, with no epoch
            rows.append({**base, "epoch": 0, "metric": np.nan, "eval_loss": np.nan, "train_loss": np.nan,
                         "epoch_seconds": np.nan, "checkpoint": None, "final": True})
            continue
        last_epoch = int(history["epoch"].max())
        for record in history.to_dict("records"):
            epoch = int(record["epoch"])
            rows.append({
                **base,
                "epoch": epoch,
                "metric": float(record.get(metric, np.nan)),
                "eval_loss": float(record.get("eval_loss", np.nan)),
                "train_loss": float(record.get("train_loss", np.nan)),
                "epoch_seconds": float(record.get("epoch_seconds", np.nan)),
                "timestamp": float(record.get("timestamp", np.nan)),  # when it was reported (Ray, Unix seconds)
                "checkpoint": checkpoint if epoch == last_epoch else None,
                "final": epoch == last_epoch,
                # every metric the trial reported (the optimised one is `metric`), e.g. f1, accuracy_mismatched
                **{k: float(v) for k, v in record.items() if _is_metric(k) and pd.notna(v)},
            })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["trial_id", "epoch"]).reset_index(drop=True)
    return frame


def write_trials(frame: pd.DataFrame, run_dir: Path, metric: str) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"ticketsearch.metric": metric.encode()})
    return atomic_write(run_dir / TRIALS_FILE, lambda tmp: pq.write_table(table, tmp))


def read_trials(run_dir: Path) -> pd.DataFrame:
    """A run's trials.parquet: one row per epoch of every trial (metric, loss, seconds, status, units, ...)."""
    return pq.read_table(Path(run_dir) / TRIALS_FILE).to_pandas()


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each trial's last reported row."""
    if frame.empty:
        return frame
    return frame[frame["final"]].reset_index(drop=True)


def frontier(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated trials among those that completed the full budget, fewest parameters first."""
    done = final_rows(frame)
    done = done[(done["status"] == COMPLETED) & done["metric"].notna()].reset_index(drop=True)
    if done.empty:
        return done
    mask = pareto_mask(done["metric"].to_numpy(), done["trainable_params"].to_numpy())
    return done[mask].sort_values(["trainable_params", "metric"], ascending=[True, False]).reset_index(drop=True)


def _text(value) -> str | None:
    """A string column's value, or None where pandas holds a missing value as NaN (JSON has no NaN)."""
    return value if isinstance(value, str) else None


def _optional(value):
    """A float, bool or None from a pandas cell that may hold NaN or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return bool(value) if isinstance(value, (bool, np.bool_)) else float(value)


TEST_FIELDS = ("test_metric", "test_low", "test_high", "not_worse_than_best", "not_worse_than_full")


def trial_point(row, total_params: int) -> dict:
    """A trial's final row as frontier.json writes a point (what export reads)."""
    return {
        "trial_id": row.trial_id,
        "metric": row.metric,
        "trainable_params": int(row.trainable_params),
        "fraction": row.trainable_params / total_params,
        "lr": row.lr,
        "preset": _text(row.preset),
        "selection": _text(row.selection),
        "units": list(row.units),
        "epoch": int(row.epoch),
        "checkpoint": _text(row.checkpoint),
        **{f: _optional(getattr(row, f, None)) for f in TEST_FIELDS},
    }


def frontier_document(front: pd.DataFrame, run: RunInfo, reference: tuple[float, float],
                      frame: pd.DataFrame | None = None) -> dict:
    """frontier.json: the frontier's points (validation `metric`; `test_*` where scored on held-out rows),
    and with `frame`, every reference point that reached the full budget (`references`)."""
    if frame is not None and "test_metric" in frame.columns:  # the scored numbers, from the trials' final rows
        scored = final_rows(frame).set_index("trial_id")[[c for c in TEST_FIELDS if c in frame.columns]]
        front = front.drop(columns=[c for c in TEST_FIELDS if c in front.columns]).join(scored, on="trial_id")
    points = [trial_point(row, run.total_params) for row in front.itertuples()]
    references = []
    if frame is not None:
        done = final_rows(frame)
        done = done[(done["status"] == COMPLETED) & done["preset"].notna()]
        on_front = set(front["trial_id"])
        references = [{**trial_point(row, run.total_params), "on_frontier": row.trial_id in on_front}
                      for row in done.sort_values("trainable_params").itertuples()]
    return {
        "metric": run.metric,
        "model": run.model,
        "task": run.task,
        "max_epochs": run.max_epochs,
        "total_params": run.total_params,
        "reference_point": {"metric": reference[0], "log10_params": reference[1]},
        "hypervolume": hypervolume(front["metric"], front["trainable_params"], reference) if len(front) else 0.0,
        "points": points,
        "references": references,
    }


def study_table(frame: pd.DataFrame, points: list[str], total_params: int) -> pd.DataFrame:
    """A paper study's table: per reference point, the metric's mean and spread over seeds on validation and,
    where the run scored them, on the test split (with the mean of the seeds' 95% intervals), its share of
    full fine-tuning's mean, and its trainable parameters. Points with no finished trial are left out."""
    done = frame[frame["final"] & (frame["status"] == COMPLETED)]
    tested = "test_metric" in done.columns
    rows = []
    for point in points:
        runs = done[done["preset"].str.split("#").str[0] == point] if done["preset"].notna().any() else done.iloc[:0]
        if runs.empty:
            continue
        row = {"point": point, "trainable_params": int(runs["trainable_params"].iloc[0]),
               "fraction": runs["trainable_params"].iloc[0] / total_params, "seeds": len(runs),
               "mean": runs["metric"].mean(), "std": runs["metric"].std(ddof=1) if len(runs) > 1 else 0.0}
        if tested:
            scores = runs["test_metric"].dropna()
            row.update(test_mean=scores.mean(), test_std=scores.std(ddof=1) if len(scores) > 1 else 0.0,
                       test_low=runs["test_low"].mean(), test_high=runs["test_high"].mean())
        rows.append(row)
    columns = ["point", "trainable_params", "fraction", "seeds", "mean", "std"]
    table = pd.DataFrame(rows, columns=columns + (["test_mean", "test_std", "test_low", "test_high"] if tested else []))
    for source, share in (("mean", "share_of_full"), ("test_mean", "test_share_of_full")):
        if source in table:
            full = table.loc[table["point"] == "full", source]
            table[share] = table[source] / full.iloc[0] if len(full) and full.iloc[0] else np.nan
    return table


def format_study(table: pd.DataFrame, metric: str) -> str:
    tested = "test_mean" in table
    header = f"{'point':<14} {'trainable':>11} {'fraction':>9} {'val mean':>9} {'std':>7} {'share':>7}"
    if tested:
        header += f" {'test mean':>10} {'std':>7} {'mean 95% interval':>18} {'share':>7}"
    lines = [header]
    for r in table.to_dict("records"):
        line = (f"{r['point']:<14} {r['trainable_params']:>11,} {r['fraction']:>9.3%} {r['mean']:>9.4f} "
                f"{r['std']:>7.4f} {r['share_of_full']:>7.1%}")
        if tested:
            line += (f" {r['test_mean']:>10.4f} {r['test_std']:>7.4f} "
                     f"{'[' + format(r['test_low'], '.3f') + ', ' + format(r['test_high'], '.3f') + ']':>18} "
                     f"{r['test_share_of_full']:>7.1%}")
        lines.append(line)
    return "\n".join(lines)
