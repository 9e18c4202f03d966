"""Train these tickets again at this budget: the one path behind `--confirm-seeds` (`confirm`: the front at more
seeds, confirm.csv), the final stage (`final_stage`: `--final-train-size`, `--final-epochs`, or `search.train RUN
--front`: the front and the reference points on the user's rows) and `python -m search.train` (one ticket at the
user's budget).

A search trains many tickets cheaply (its proxy: `--train-size` rows, `--max-epochs` epochs); users train the one
they keep on all their rows. `train_again` trains the given tickets (each trial's units, learning rate and rate
scale) with the run's own recipe (batch size, pooling, the head's rate floor, seed) at a `Budget`, as one Ray Tune
experiment in the run folder (`RUN/NAME`): a killed driver's experiment is restored, not started again, so no
finished retraining is lost. Each ticket is validated after its last epoch and its last checkpoint scored once on
the run's held-out test rows, the same rows the search's numbers came from, so the two budgets compare paired.

The final stage writes frontier.json's `final`: the budget; every retrained ticket with its numbers at both budgets;
the front at the final budget (by validation metric, as the search's front is chosen); the rank agreement of the two
budgets (Kendall's tau, scipy's: the search's test metric against the final one, and the search's validation
metric, what it chose on, against the final test metric); and the "within noise of full fine-tuning" verdicts that
flipped. `search.export` then chooses from the final front; the report shows both budgets side by side.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray.tune import Callback

from search.driver.prepare import Prepared, load_run_task
from search.driver.trials import trial_data, trial_dirname, trial_resources, trial_settings
from search.results.holdout import compare, holdout_trials, score_checkpoints
from search.results.table import frontier, read_trials, trial_point
from search.steer.pareto import pareto_mask
from search.storage.files import CONFIRM_FILE, FINAL_HOLDOUT_FILE, FRONTIER_FILE, atomic_write, write_json
from search.storage.run_info import RunInfo
from spaces import TENSORS_FILE, UsageError
from trainables import compute_metrics, encode, finetune, load_tokenizer

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
    task, splits = load_run_task(config)
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
    return score_checkpoints(checkpoints, prep.data.test, trial_settings(prep), prep.config)


# -- --confirm-seeds K: the front at the search's budget, at K more seeds ---------------------------------------

def confirm(prep: Prepared, seeds: int) -> pd.DataFrame:
    """Train every frontier point again with `seeds` more seeds at the search's budget (no early stopping;
    search.driver.again); a table of mean and standard deviation of the metric over all its seeds (the search's
    included), on validation and, where the task has a test split, on the held-out rows (each seed's last
    checkpoint scored once); confirm.csv."""
    frame = read_trials(prep.run_dir)
    front = frontier(frame)
    metric, config = prep.task.metric, prep.config
    points = {t: json.loads(c) for t, c in zip(front["trial_id"], front["config"])}
    base = config.seed
    retrained = train_again(prep, points, [base + k for k in range(1, seeds + 1)], "confirm")
    outputs = scored_outputs(prep, retrained, points)
    values: dict[str, list[float]] = {t: [m] for t, m in zip(front["trial_id"], front["metric"])}
    tests: dict[str, list[float]] = {t: [] for t in front["trial_id"]}
    if "test_metric" in front:
        tests = {t: [m] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.notna(m)} | {
            t: [] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.isna(m)}
    for r in retrained:
        values[r.key].append(r.metric)
        if (r.key, r.seed) in outputs:
            assert prep.data.test is not None  # outputs only with test rows
            tests[r.key].append(compute_metrics(outputs[(r.key, r.seed)], prep.data.test.labels,
                                                prep.task.regression)[metric])

    def spread(numbers: list[float]) -> dict:
        return {"mean": float(np.mean(numbers)) if numbers else np.nan,
                "std": float(np.std(numbers, ddof=1)) if len(numbers) > 1 else (0.0 if numbers else np.nan)}

    table = pd.DataFrame([{
        "trial_id": t, "selection": s, "trainable_params": int(p), "search_metric": values[t][0],
        "seeds": len(values[t]), **spread(values[t]),
        "min": float(np.min(values[t])), "max": float(np.max(values[t])),
        "test_seeds": len(tests[t]), **{f"test_{k}": v for k, v in spread(tests[t]).items()},
    } for t, s, p in zip(front["trial_id"], front["selection"], front["trainable_params"])])
    atomic_write(prep.run_dir / CONFIRM_FILE, lambda tmp: table.to_csv(tmp, index=False))
    prep.location.push((CONFIRM_FILE,))
    print(f"\nfrontier confirmed over {seeds} more seed(s) (seeds {base}..{base + seeds}): {metric}, validation "
          f"and held-out test")
    print(f"{'trainable':>11} {'search':>8} {'mean':>8} {'std':>7} {'min':>8} {'max':>8} {'test mean':>10} "
          f"{'test std':>9}  selection")
    for r in table.to_dict("records"):
        print(f"{r['trainable_params']:>11,} {r['search_metric']:>8.4f} {r['mean']:>8.4f} {r['std']:>7.4f} "
              f"{r['min']:>8.4f} {r['max']:>8.4f} {r['test_mean']:>10.4f} {r['test_std']:>9.4f}  {r['selection']}")
    print(f"wrote {prep.run_dir / CONFIRM_FILE}")
    return table


# -- the final stage: the front and the reference points at the user's budget -------------------------------------

def final_budget(config) -> Budget | None:
    """The run's final stage from its options, or None where it has none."""
    if config.final_train_size is None:
        return None
    rows = None if config.final_train_size == "all" else int(config.final_train_size)
    return Budget(rows, config.final_epochs or config.max_epochs)


def final_stage(prep: Prepared, budget: Budget, document: dict) -> dict:
    """Train the front and the reference points of the finished search in `prep` again at `budget`; return
    frontier.json's `final` block (and write it into the run's frontier.json, with the report)."""
    from scipy.stats import kendalltau

    frame = read_trials(prep.run_dir)
    front = frontier(frame)
    chosen = holdout_trials(frame, front)  # the front's tickets and every reference point, as the test scored them
    points = {t: json.loads(c) for t, c in zip(chosen["trial_id"], chosen["config"])}
    if not points:
        print("\nfinal stage: nothing to train again (no ticket reached the search's full budget)")
        return {}
    final = at_budget(prep, budget)
    rows = len(final.data.train)
    started = time.monotonic()
    print(f"\nfinal stage: the front's tickets and the reference points ({len(points)}) trained again on {rows:,} "
          f"training rows x {budget.epochs} epochs (the search: {prep.config.train_size:,} x "
          f"{prep.config.max_epochs}), scored on the same test rows; stopped, it continues with: python -m "
          f"search.train {prep.location.quoted} --front --train-size {budget.train_size or 'all'} --epochs "
          f"{budget.epochs}", flush=True)
    retrained = {r.key: r for r in train_again(final, points, [prep.config.seed], "final")}
    scored_pairs = scored_outputs(final, list(retrained.values()), points)
    outputs: dict[str, Any] = {key: value for (key, _), value in scored_pairs.items()}
    run = RunInfo.read(prep.run_dir)
    kept = chosen[chosen["trial_id"].isin(retrained)].reset_index(drop=True)
    tests = None
    if outputs and prep.data.test is not None:
        np.savez_compressed(prep.run_dir / FINAL_HOLDOUT_FILE, **{"labels": prep.data.test.labels, **outputs})
        tests = compare(outputs, prep.data.test.labels, kept, prep.task.metric, prep.task.regression)
        tests = tests.set_index("trial_id")
    entries = []
    for row in kept.itertuples():
        again = retrained[row.trial_id]
        search = trial_point(row, run.total_params)
        entry = {**search, "metric": again.metric, "epoch": budget.epochs, "checkpoint": again.checkpoint,
                 "trained_seconds": round(again.seconds, 1), "search_metric": search["metric"],
                 "search_test_metric": search.get("test_metric"),
                 "search_not_worse_than_full": search.get("not_worse_than_full")}
        for column in ("test_metric", "test_low", "test_high", "not_worse_than_best", "not_worse_than_full"):
            value = None if tests is None else tests.loc[row.trial_id, column]
            entry[column] = None if value is None or pd.isna(value) else (
                bool(value) if column.startswith("not_worse") else float(value))
        entries.append(entry)
    entries.sort(key=lambda e: (e["trainable_params"], -e["metric"]))
    mask = pareto_mask(np.array([e["metric"] for e in entries]), np.array([e["trainable_params"] for e in entries]))
    for entry, on in zip(entries, mask, strict=True):
        entry["on_final_front"] = bool(on)
    block = {"budget": budget.as_dict(rows), "search_budget": {"train_size": prep.config.train_size,
                                                                "epochs": prep.config.max_epochs},
             "points": [e for e in entries if e["on_final_front"]], "retrained": entries,
             "elapsed_seconds": round(time.monotonic() - started, 1)}
    scored = [e for e in entries if e["test_metric"] is not None and e["search_test_metric"] is not None]
    if len(scored) >= 2:
        final_test = [e["test_metric"] for e in scored]
        tau_test = kendalltau([e["search_test_metric"] for e in scored], final_test)
        tau_search = kendalltau([e["search_metric"] for e in scored], final_test)
        block["kendall_tau"] = {"test": _number(tau_test.statistic), "test_p": _number(tau_test.pvalue),
                                "search_validation": _number(tau_search.statistic), "points": len(scored)}
    block["flipped"] = [{"trial_id": e["trial_id"], "selection": e["selection"], "preset": e["preset"],
                         "search": e["search_not_worse_than_full"], "final": e["not_worse_than_full"]}
                        for e in entries if e["search_not_worse_than_full"] is not None
                        and e["not_worse_than_full"] is not None
                        and e["search_not_worse_than_full"] != e["not_worse_than_full"]]
    document["final"] = block
    print_final(block, prep.task.metric)
    return block


def _number(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def write_final(prep: Prepared, document: dict) -> None:
    """frontier.json (and the report) with the final stage in them."""
    from search.results.html_report import build_report

    build_report(prep.run_dir, prep.location.quoted, frontier_document=document)
    prep.location.push()
    write_json(prep.run_dir / FRONTIER_FILE, document)
    prep.location.push((FRONTIER_FILE,))


def print_final(block: dict, metric: str) -> None:
    budget, search = block["budget"], block["search_budget"]
    mark = {True: "yes", False: "no", None: "-"}
    print(f"\nat the final budget ({budget['train_size']:,} rows x {budget['epochs']} epochs) beside the search's "
          f"({search['train_size']:,} x {search['epochs']}); * on the final front")
    print(f"{'trainable':>11} {'val':>7} {'test':>7} {'95% interval':>15} {'~full':>5} | {'search val':>10} "
          f"{'test':>7} {'~full':>5}  selection")
    for e in block["retrained"]:
        span = "" if e["test_low"] is None else f"[{e['test_low']:.3f}, {e['test_high']:.3f}]"
        test = "-" if e["test_metric"] is None else f"{e['test_metric']:.4f}"
        before = "-" if e["search_test_metric"] is None else f"{e['search_test_metric']:.4f}"
        print(f"{e['trainable_params']:>11,} {e['metric']:>7.4f} {test:>7} {span:>15} "
              f"{mark[e['not_worse_than_full']]:>5} | {e['search_metric']:>10.4f} {before:>7} "
              f"{mark[e['search_not_worse_than_full']]:>5}  {'*' if e['on_final_front'] else ' '}"
              f"{e['selection'] or 'head only'}" + (f"  [{e['preset']}]" if e["preset"] else ""))
    if tau := block.get("kendall_tau"):
        print(f"rank agreement over {tau['points']} tickets (Kendall's tau): test {metric} at the search's budget vs "
              f"the final one {tau['test']}, the search's validation {metric} vs the final test {metric} "
              f"{tau['search_validation']}")
    flips = block["flipped"]
    print("within noise of full fine-tuning: " + ("the same verdict at both budgets for every ticket" if not flips else
          "; ".join(f"{f['selection'] or 'head only'} {mark[f['search']]} -> {mark[f['final']]}" for f in flips)))
