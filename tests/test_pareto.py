import math

import numpy as np
import pandas as pd
import pytest

from search import frontier, hypervolume, pareto_mask, reference_point
from search.results.table import COMPLETED, STOPPED


def test_pareto_mask_keeps_non_dominated_points_only():
    metric = [0.60, 0.70, 0.65, 0.80, 0.70, 0.55]
    params = [100, 1_000, 5_000, 1_000_000, 1_000, 50]
    # (0.65, 5000) is dominated by (0.70, 1000); the two (0.70, 1000) ties both stay.
    assert pareto_mask(metric, params).tolist() == [True, True, False, True, True, True]


def test_hypervolume_of_a_known_front():
    ref = (0.5, 6.0)  # majority metric, log10(total params)
    # One point at (0.7, 10^4): a box 0.2 wide (metric) and 2 decades tall.
    assert hypervolume([0.7], [10_000], ref) == pytest.approx(0.2 * 2)
    # Staircase: (0.6, 10^2) and (0.8, 10^5): 0.1*4 + 0.2*1 = 0.6
    assert hypervolume([0.6, 0.8], [100, 100_000], ref) == pytest.approx(0.1 * 4 + 0.2 * 1)
    # Points that do not beat the reference add nothing; dominated points add nothing.
    assert hypervolume([0.6, 0.8, 0.4, 0.55], [100, 100_000, 10, 1_000], ref) == pytest.approx(0.6)
    assert hypervolume([], [], ref) == 0.0


def test_reference_point_bounds_what_counts():
    """A sub-network at the majority-class metric, or training every parameter, adds nothing; one a decade
    cheaper than everything and 0.1 above the majority class adds a 0.1 x 1 rectangle."""
    reference = reference_point(0.58, 1_000_000)
    assert hypervolume([0.58], [10], reference) == 0.0 and hypervolume([0.9], [1_000_000], reference) == 0.0
    assert hypervolume([0.68], [100_000], reference) == pytest.approx(0.1)
    assert hypervolume([0.68, 0.68], [100_000, 100_000], reference) == pytest.approx(0.1)


def _rows(trials):
    rows = []
    for trial_id, status, params, metrics in trials:
        for epoch, value in enumerate(metrics, start=1):
            rows.append({"trial_id": trial_id, "status": status, "trainable_params": params, "epoch": epoch,
                         "metric": value, "final": epoch == len(metrics)})
    return pd.DataFrame(rows)


def test_frontier_uses_only_full_budget_trials_and_no_dominated_point():
    frame = _rows([
        ("a", COMPLETED, 770, [0.55, 0.60, 0.62]),
        ("b", COMPLETED, 10_000, [0.60, 0.70, 0.75]),
        ("c", STOPPED, 500, [0.90]),  # stopped early: never on the front, however good it looked
        ("d", COMPLETED, 50_000, [0.6, 0.7, 0.74]),  # dominated by b
        ("e", COMPLETED, 20_000_000, [0.7, 0.78, 0.80]),
    ])
    front = frontier(frame)
    assert front["trial_id"].tolist() == ["a", "b", "e"]
    assert (front["epoch"] == 3).all()
    assert not math.isnan(front["metric"].sum())
    assert np.all(np.diff(front["metric"]) > 0)


def test_frontier_document_is_strict_json_when_columns_are_missing():
    import json

    from search import RunInfo
    from search.results.table import frontier_document

    frame = _rows([("a", COMPLETED, 770, [0.6]), ("b", COMPLETED, 10_000, [0.7])])
    frame["preset"] = ["head", None]  # a searched trial has no preset
    frame["selection"], frame["units"], frame["lr"], frame["checkpoint"] = "x", [[], ["0.query"]], 1e-3, None
    front = frontier(pd.concat([frame, frame.iloc[:0]]))  # pandas turns the missing preset into NaN
    run = RunInfo(args={}, model="m", task="t", metric="accuracy", num_labels=2, max_epochs=1, total_params=10**6,
                  fingerprint="f")
    document = frontier_document(front, run, (0.5, 6.0))
    text = json.dumps(document, allow_nan=False)  # raises on NaN
    assert json.loads(text)["points"][1]["preset"] is None
