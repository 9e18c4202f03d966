"""A trainable that replays recorded learning curves instead of training.

A table maps a sub-network (its sorted unit references) to its metric and seconds per epoch.
Searches over a tabulated space then run in seconds on the real scheduler and searcher, which
is what benchmarks of search strategies and load tests of the cluster code need.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq


def units_key(units) -> str:
    """The table key of a sub-network: its unit references, sorted, as JSON."""
    return json.dumps(sorted(units))


# Per-epoch columns a table may hold besides the metric; replayed results report them too
# (the Pareto-aware scheduler breaks ties on the validation loss).
EXTRA_COLUMNS = ("eval_loss", "train_loss")


@dataclass(frozen=True)
class ReplayTable:
    """Recorded curves: key -> ((metric, seconds, extras) for epoch 1, 2, ...)."""

    metric: str
    curves: dict[str, tuple[tuple[float, float, dict], ...]]

    @classmethod
    def from_rows(cls, rows, metric: str = "accuracy") -> ReplayTable:
        """Rows with `units`, `epoch`, `metric`, `epoch_seconds` and optionally `eval_loss`/`train_loss`
        (one row per epoch of a sub-network)."""
        by_key: dict[str, dict[int, tuple[float, float, dict]]] = {}
        for row in rows:
            curve = by_key.setdefault(units_key(row["units"]), {})
            extras = {k: float(row[k]) for k in EXTRA_COLUMNS if row.get(k) is not None}
            curve[int(row["epoch"])] = (float(row["metric"]), float(row["epoch_seconds"]), extras)
        return cls(metric, {k: tuple(v[e] for e in sorted(v)) for k, v in by_key.items()})

    @classmethod
    def from_parquet(cls, path: str | Path, metric: str = "accuracy") -> ReplayTable:
        return cls.from_rows(pq.read_table(path).to_pylist(), metric)

    def curve(self, units) -> tuple[tuple[float, float, dict], ...]:
        try:
            return self.curves[units_key(units)]
        except KeyError:
            raise KeyError(f"sub-network {sorted(units)} is not in the replay table") from None


def replay(config: dict, table: ReplayTable, max_epochs: int, time_scale: float = 0.0) -> None:
    """Ray Tune function trainable: report the recorded curve of `config["units"]`, epoch by epoch.

    `time_scale` sleeps that fraction of each recorded epoch's seconds (0: as fast as possible).
    Checkpoints hold the epoch reached, so a retried or restored trial continues where it was.
    """
    from ray import tune

    curve = table.curve(config["units"])
    if len(curve) < max_epochs:
        raise ValueError(f"replay table has {len(curve)} epochs for this sub-network, the search wants {max_epochs}")
    first_epoch = 1
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as directory:
            first_epoch = json.loads((Path(directory) / "state.json").read_text())["epoch"] + 1
    for epoch in range(first_epoch, max_epochs + 1):
        value, seconds, extras = curve[epoch - 1]
        time.sleep(seconds * time_scale)
        result = {table.metric: value, **extras, "trainable_params": config["trainable_params"], "epoch": epoch,
                  "epoch_seconds": seconds, "replayed": True}
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
