"""`--confirm-seeds K`: the frontier trained again with K more seeds, so its numbers come with a spread.

Every frontier point is trained to the full budget (no early stopping) at each new seed; each seed's
last checkpoint is scored once on the held-out rows. confirm.csv holds the mean and standard
deviation over all seeds (the search's own included), on validation and on test.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from search.driver.again import scored_outputs, train_again
from search.driver.prepare import Prepared
from search.results.table import frontier, read_trials
from search.storage.files import CONFIRM_FILE, atomic_write
from trainables import compute_metrics

if TYPE_CHECKING:
    import pandas as pd


def confirm(prep: Prepared, seeds: int) -> pd.DataFrame:
    """Train every frontier point again with `seeds` more seeds at the search's budget (no early stopping;
    search.driver.again); a table of mean and standard deviation of the metric over all its seeds (the search's
    included), on validation and, where the task has a test split, on the held-out rows (each seed's last
    checkpoint scored once); confirm.csv."""
    import numpy as np
    import pandas as pd

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
