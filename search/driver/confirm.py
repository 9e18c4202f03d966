"""`--confirm-seeds K`: the frontier trained again with K more seeds, so its numbers come with a spread.

Every frontier point is trained to the full budget (no early stopping) at each new seed; each seed's
last checkpoint is scored once on the held-out rows. confirm.csv holds the mean and standard
deviation over all seeds (the search's own included), on validation and on test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from search.driver.prepare import Prepared
from search.driver.trials import trial_data, trial_dirname, trial_resources, trial_settings
from search.results.table import frontier, read_trials
from search.storage.files import CONFIRM_FILE, atomic_write
from spaces import TENSORS_FILE
from trainables import compute_metrics, finetune, predict_saved

if TYPE_CHECKING:
    import pandas as pd


def confirm_trial(config: dict, data, settings) -> None:
    """Ray trainable of `--confirm-seeds`: one frontier point (`config["point"]`) at one seed."""
    finetune({**config["point"], "seed": config["seed"]}, data, settings)


def confirm(prep: Prepared, seeds: int) -> pd.DataFrame:
    """Train every frontier point again with `seeds` more seeds (no early stopping); a table of mean and
    standard deviation of the metric over all its seeds (the search's included), on validation and, where
    the task has a test split, on the held-out rows (each seed's last checkpoint scored once); confirm.csv."""
    import numpy as np
    import pandas as pd
    import ray
    from ray import tune
    from safetensors.torch import load_file

    frame = read_trials(prep.run_dir)
    front = frontier(frame)
    metric, config = prep.task.metric, prep.config
    points = [json.loads(c) for c in front["config"]]
    base = config.seed
    settings = trial_settings(prep)
    trainable = tune.with_resources(
        tune.with_parameters(confirm_trial, data=trial_data(prep.data), settings=settings),
        trial_resources(config),
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"point": tune.grid_search(points),
                     "seed": tune.grid_search([base + k for k in range(1, seeds + 1)])},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name="confirm", storage_path=prep.location.path, verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=config.max_failures)),
    )
    results = tuner.fit()
    values: dict[str, list[float]] = {t: [m] for t, m in zip(front["trial_id"], front["metric"])}
    tests: dict[str, list[float]] = {t: [] for t in front["trial_id"]}
    if "test_metric" in front:
        tests = {t: [m] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.notna(m)} | {
            t: [] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.isna(m)}
    test = prep.data.test
    predict = ray.remote(predict_saved).options(num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial)
    pending = []
    for result in (results[i] for i in range(len(results))):
        if result.error is None and result.metrics and result.metrics.get("epoch") == config.max_epochs:
            point = (result.config or {})["point"]
            trial = front["trial_id"][points.index(point)]
            values[trial].append(float(result.metrics[metric]))
            if test is not None and result.checkpoint is not None:
                with result.checkpoint.as_directory() as directory:
                    tensors = load_file(str(Path(directory) / TENSORS_FILE))
                pending.append((trial, predict.remote(point["units"], tensors, test, settings)))
    for trial, outputs in zip([t for t, _ in pending], ray.get([f for _, f in pending])):
        assert test is not None  # pending only with test rows
        tests[trial].append(compute_metrics(outputs, test.labels, prep.task.regression)[metric])

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
