"""Faults inside trials, on a real local Ray: crashes are retried from checkpoints; NaN and OOM, which a
retry would only repeat, end the trial at once under the same retry setting, recorded with their reason."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ray import (
    cloudpickle,  # Ray pickles with its own copy of cloudpickle
    tune,
)

from search import parse_args
from search.results.table import ERROR, trial_rows
from spaces import load_taxonomy
from trainables import (
    ReplayTable,
    TrialSettings,
    encode,
    ends_on_deterministic_failure,
    finetune,
    load_task,
    load_tokenizer,
    replay,
)

CURVE = [(0.6, 1.0), (0.7, 1.0), (0.75, 1.0)]


def _table(units_list):
    rows = [{"units": units, "epoch": e + 1, "metric": m, "epoch_seconds": s}
            for units in units_list for e, (m, s) in enumerate(CURVE)]
    return ReplayTable.from_rows(rows)


def crash_once(config, table, max_epochs, marker_dir):
    """Replays, but the first attempt of a trial dies after reporting epoch 1."""
    marker = Path(marker_dir) / "_".join(sorted(config["units"]) or ["head"])
    resumed_at = None
    if tune.get_checkpoint() is not None:
        with tune.get_checkpoint().as_directory() as d:
            resumed_at = json.loads((Path(d) / "state.json").read_text())["epoch"]
        marker.with_suffix(".resumed").write_text(str(resumed_at))
    if not marker.exists():
        marker.write_text("crashed")
        replay(config, table, 1)  # reports epoch 1 with a checkpoint
        os._exit(1)  # the worker process dies, as on a segfault or a kill
    replay(config, table, max_epochs)


def fail_with(config, table, max_epochs, marker_dir):
    """Replays; a trial configured with a fault raises it in epoch 2, under the same guard as finetune."""
    attempts = Path(marker_dir) / f"attempts_{config['fault']}_{config['units'][0]}"
    attempts.write_text(str(int(attempts.read_text()) + 1 if attempts.exists() else 1))
    with ends_on_deterministic_failure():
        replay(config, table, 1)
        if config["fault"] == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if config["fault"] == "crash":
            raise RuntimeError("a transient failure")
        replay(config, table, max_epochs)


class Recoveries(tune.Callback):
    """Counts Ray's retries of each trial."""

    def __init__(self):
        self.count = 0

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.count += 1


DEFAULT_RETRIES = parse_args([]).max_failures


@pytest.fixture(autouse=True)
def _ship_this_module():
    import sys

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder


def test_crashed_trial_is_retried_from_its_checkpoint(ray_session, tmp_path):
    configs = [{"units": ["0.query"], "trainable_params": 10}, {"units": [], "trainable_params": 1}]
    table = _table([c["units"] for c in configs])
    tuner = tune.Tuner(
        tune.with_parameters(crash_once, table=table, max_epochs=3, marker_dir=str(tmp_path)),
        param_space={"units": tune.grid_search([c["units"] for c in configs]), "trainable_params": 5},
        run_config=tune.RunConfig(storage_path=str(tmp_path / "runs"), name="crash", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=2)),
    )
    results = tuner.fit()
    assert not results.errors
    assert sorted(p.read_text() for p in tmp_path.glob("*.resumed")) == ["1", "1"]  # resumed after epoch 1
    frame = trial_rows(results, "accuracy", 3, tmp_path)
    assert not frame.duplicated(["trial_id", "epoch"]).any()
    assert frame.groupby("trial_id")["epoch"].apply(list).tolist() == [[1, 2, 3], [1, 2, 3]]
    assert set(frame["status"]) == {"completed"}


def test_out_of_memory_is_not_retried_and_the_search_goes_on(ray_session, tmp_path):
    assert DEFAULT_RETRIES >= 1  # the default does retry: a crash below is retried, an OOM is not
    table = _table([["0.query"], ["1.query"], ["2.query"]])
    recoveries = Recoveries()
    tuner = tune.Tuner(
        tune.with_parameters(fail_with, table=table, max_epochs=3, marker_dir=str(tmp_path)),
        param_space={"units": tune.grid_search([["0.query"], ["1.query"], ["2.query"]]), "trainable_params": 10,
                     "fault": tune.sample_from(lambda spec: {"0.query": "oom", "1.query": "none"}.get(
                         spec.config.units[0], "crash"))},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="oom", verbose=0, callbacks=[recoveries],
                                  failure_config=tune.FailureConfig(max_failures=DEFAULT_RETRIES)),
    )
    frame = trial_rows(tuner.fit(), "accuracy", 3, tmp_path)
    finals = frame[frame["final"]].set_index(frame[frame["final"]]["units"].str[0])
    assert finals.loc["0.query", "status"] == ERROR and finals.loc["0.query", "error"].startswith("OutOfMemoryError")
    assert finals.loc["0.query", "epoch"] == 1  # what it reported before the failure is kept
    assert finals.loc["1.query", "status"] == "completed"
    assert finals.loc["2.query", "status"] == ERROR and "transient" in finals.loc["2.query", "error"]
    attempts = {p.name: int(p.read_text()) for p in tmp_path.glob("attempts_*")}
    assert attempts["attempts_oom_0.query"] == 1  # never retried
    assert attempts["attempts_crash_2.query"] == DEFAULT_RETRIES + 1  # retried as the setting says
    assert recoveries.count == DEFAULT_RETRIES


def test_nan_loss_ends_the_trial_with_its_reason(ray_session, tiny_bert, text_csv, tmp_path):
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(tiny_bert), 16, 32, 16)
    taxonomy = load_taxonomy(tiny_bert, 2)
    settings = TrialSettings(model=tiny_bert, num_labels=2, max_epochs=2, batch_size=8)
    units = [u.id for u in taxonomy.units]
    recoveries = Recoveries()
    tuner = tune.Tuner(
        tune.with_parameters(finetune, data=data, settings=settings),
        # lr 1e30 blows the weights up to inf within a step or two: the loss turns NaN
        param_space={"units": units, "trainable_params": taxonomy.count(units),
                     "lr": tune.grid_search([1e30, 1e-3])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="nan", verbose=0, callbacks=[recoveries],
                                  failure_config=tune.FailureConfig(max_failures=DEFAULT_RETRIES)),
    )
    frame = trial_rows(tuner.fit(), "accuracy", 2, tmp_path)
    finals = frame[frame["final"]].sort_values("lr")
    assert finals["status"].tolist() == ["completed", ERROR]
    assert "loss became nan" in finals["error"].iloc[1] or "loss became inf" in finals["error"].iloc[1]
    assert np.isfinite(finals["metric"].iloc[0])
    assert recoveries.count == 0  # the default retries were not spent on a NaN that would come back
