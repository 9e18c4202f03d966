"""Train these tickets again at this budget: the one path behind `--confirm-seeds` (the front at more seeds), the
final stage (`--final-train-size`, `--final-epochs`: the front and the reference points on the user's rows) and
`python -m search.train` (one ticket at the user's budget).

A search trains many tickets cheaply (its proxy: `--train-size` rows, `--max-epochs` epochs); users train the one
they keep on all their rows. `train_again` trains the given tickets (each trial's units, learning rate and rate
scale) with the run's own recipe (batch size, pooling, the head's rate floor, seed) at a `Budget`, as one Ray Tune
experiment in the run folder (`RUN/NAME`): a killed driver's experiment is restored, not started again, so no
finished retraining is lost. Each ticket is validated after its last epoch and its last checkpoint scored once on
the run's held-out test rows, the same rows the search's numbers came from, so the two budgets compare paired.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ray.tune import Callback

from search.driver.prepare import Prepared
from search.driver.scoring import score_checkpoints
from search.driver.trials import trial_data, trial_dirname, trial_resources, trial_settings
from spaces import TENSORS_FILE, UsageError
from trainables import encode, finetune, load_task, load_tokenizer

ALL_ROWS = "all"


@dataclass(frozen=True)
class Budget:
    """What a ticket is trained on: `train_size` rows of the run's training split (None: all of them), `epochs`."""

    train_size: int | None
    epochs: int

    @classmethod
    def parse(cls, rows: str | int | None, epochs: int | None, default_epochs: int) -> Budget:
        """From the command line: rows a count or `all` (UsageError otherwise), epochs at least 1."""
        if isinstance(rows, str):
            if rows.strip().lower() == ALL_ROWS:
                rows = None
            else:
                try:
                    rows = int(rows.replace(",", "").replace("_", ""))
                except ValueError:
                    raise UsageError(f"--train-size '{rows}' is not a number of rows or 'all'") from None
        if rows is not None and rows < 1:
            raise UsageError(f"--train-size must be at least 1 (or 'all'), not {rows}")
        epochs = default_epochs if epochs is None else epochs
        if epochs < 1:
            raise UsageError(f"--epochs must be at least 1, not {epochs}")
        return cls(rows, epochs)

    def as_dict(self, rows: int) -> dict:
        return {"train_size": rows, "epochs": self.epochs, "all_rows": self.train_size is None}


def at_budget(prep: Prepared, budget: Budget) -> Prepared:
    """The run's plan with its training rows and epochs at `budget`: the same shuffled training split (its first
    rows), the same validation and test rows, the same recipe. The proxy's rows are the first of these."""
    config = prep.config
    task, splits = load_task(config.task, config.data, config.text_column, config.text_pair_column,
                             config.label_column, data_dir=config.data_dir, regression=config.regression,
                             metric=config.metric)
    data = encode(task, splits, load_tokenizer(prep.model), config.max_length, budget.train_size, config.eval_size,
                  config.test_size)
    return dataclasses.replace(prep, data=data,
                               config=config.replace(train_size=len(data.train), max_epochs=budget.epochs))


@dataclass(frozen=True)
class Retrained:
    """One ticket trained again: `key` names it (a trial id), at `seed`; its validation metric after the last
    epoch, the seconds it trained, and its checkpoint (relative to the run folder)."""

    key: str
    seed: int
    metric: float
    seconds: float
    checkpoint: str


def _trial(config: dict, data, settings) -> None:
    """Ray trainable: one ticket (`config["point"]`, a trial's config) at one seed."""
    finetune({**config["point"], "seed": config["seed"]}, data, settings)


class EpochLines(Callback):
    """One line per trained epoch, with a bar of the ticket's epochs (a retraining takes minutes to hours)."""

    def __init__(self, names: dict[str, str], epochs: int, metric: str, total: int):
        self.names, self.epochs, self.metric, self.total = names, epochs, metric, total
        self.started = time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        config = trial.config or {}
        name = self.names.get(json.dumps(config.get("point", {}), sort_keys=True), trial.trial_id)
        epoch = int(result.get("epoch", 0))
        metric = result.get(self.metric)
        scored = "" if metric is None or metric != metric else f", validation {self.metric} {metric:.4f}"
        done = sum(1 for t in trials if t.status == "TERMINATED") + (epoch == self.epochs)
        print(f"[{time.monotonic() - self.started:6.0f}s] {name} (seed {config.get('seed')}) "
              f"[{'#' * epoch}{'.' * max(0, self.epochs - epoch)}] epoch {epoch}/{self.epochs}: training loss "
              f"{result.get('train_loss', float('nan')):.4f}{scored}; {done} of {self.total} done", flush=True)


def train_again(prep: Prepared, points: dict[str, dict], seeds: list[int], name: str) -> list[Retrained]:
    """Train each point (by key: a trial id -> its config) at each seed to `prep.config.max_epochs` on `prep.data`,
    as the Ray Tune experiment `RUN/name`; restored where a killed driver left it. Ray must be up."""
    from ray import tune

    config = prep.config
    # the search's frozen-prefix cache holds its own rows' outputs: each retraining computes its own
    settings = dataclasses.replace(trial_settings(prep), max_epochs=config.max_epochs, cache_dir=None,
                                   eval_epochs=(config.max_epochs,))
    trainable = tune.with_resources(tune.with_parameters(_trial, data=trial_data(prep.data), settings=settings),
                                    trial_resources(config))
    path = f"{prep.location.path.rstrip('/')}/{name}"
    names = {json.dumps(point, sort_keys=True): key for key, point in points.items()}
    lines = EpochLines(names, config.max_epochs, prep.task.metric, len(points) * len(seeds))
    if tune.Tuner.can_restore(path):
        print(f"resuming the retraining in {path}")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"point": tune.grid_search(list(points.values())), "seed": tune.grid_search(list(seeds))},
            tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=trial_dirname),
            run_config=tune.RunConfig(name=name, storage_path=prep.location.path, verbose=0, callbacks=[lines],
                                      failure_config=tune.FailureConfig(max_failures=config.max_failures)),
        )
    grid = tuner.fit()
    out = []
    for result in (grid[i] for i in range(len(grid))):
        metrics = result.metrics or {}
        if result.error is not None or metrics.get("epoch") != config.max_epochs or result.checkpoint is None:
            continue
        trained = result.config or {}
        point = trained["point"]
        history = result.metrics_dataframe
        seconds = float(history["epoch_seconds"].sum()) if history is not None and "epoch_seconds" in history else 0.0
        out.append(Retrained(names[json.dumps(point, sort_keys=True)], int(trained["seed"]),
                             float(metrics[prep.task.metric]), seconds,
                             str(Path(result.checkpoint.path).relative_to(prep.location.fs_path))))
    if not out:
        raise RuntimeError(f"no ticket finished its retraining in {path} (see its trial folders)")
    return out


def scored_outputs(prep: Prepared, retrained: list[Retrained], points: dict[str, dict]) -> dict[tuple, np.ndarray]:
    """Each retrained ticket's outputs on the run's test rows, by (key, seed) (empty without a test split)."""
    from safetensors.torch import load_file

    if prep.data.test is None:
        return {}
    checkpoints = {(r.key, r.seed): (list(points[r.key]["units"]),
                                     load_file(str(prep.location.fetch_folder(r.checkpoint) / TENSORS_FILE)))
                   for r in retrained}
    return score_checkpoints(prep, checkpoints, trial_settings(prep))
