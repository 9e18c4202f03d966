"""Test numbers a user can trust: bootstrap intervals, paired comparisons, the within-noise choice."""

import numpy as np
import pandas as pd
import pytest

from search import interval, metric_function, not_worse, paired_difference, paired_test
from search.results.holdout import compare, holdout_trials, with_test_columns
from search.ticket.export import choose
from spaces import UsageError
from trainables import compute_metrics


def _logits(predictions, classes=2):
    return np.eye(classes)[np.asarray(predictions)]


def test_interval_of_an_accuracy_matches_the_binomial_answer():
    labels = np.zeros(1000, dtype=int)
    predictions = np.zeros(1000, dtype=int)
    predictions[:250] = 1  # 750 of 1,000 right
    score = interval(_logits(predictions), labels, "accuracy")
    half_width = 1.96 * np.sqrt(0.75 * 0.25 / 1000)  # the normal approximation: +-0.0268
    assert score.value == pytest.approx(0.75)
    assert score.low == pytest.approx(0.75 - half_width, abs=0.005)
    assert score.high == pytest.approx(0.75 + half_width, abs=0.005)


def test_interval_narrows_with_more_rows():
    rng = np.random.default_rng(0)
    widths = []
    for rows in (100, 1600):
        labels = rng.integers(0, 2, rows)
        predictions = np.where(rng.random(rows) < 0.8, labels, 1 - labels)
        score = interval(_logits(predictions), labels, "accuracy")
        widths.append(score.high - score.low)
    assert widths[1] < widths[0] / 3  # about 1/sqrt(16) = 1/4


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("metric", ["accuracy", "f1", "matthews_correlation"])
def test_vectorised_metrics_equal_the_trials_metrics(metric, classes):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, (5, 200))
    predictions = np.where(rng.random((5, 200)) < 0.6, labels, rng.integers(0, classes, (5, 200)))
    got = metric_function(metric, False, classes)(predictions, labels)
    expected = [compute_metrics(_logits(p, classes), y, False)[metric] for p, y in zip(predictions, labels)]
    assert np.allclose(got, expected)


def test_vectorised_correlations_equal_scipys():
    rng = np.random.default_rng(0)
    labels = rng.normal(size=(3, 150))
    predictions = labels + rng.normal(size=(3, 150))
    for metric in ("pearson", "spearman"):
        got = metric_function(metric, True, 0)(predictions, labels)
        expected = [compute_metrics(p, y, True)[metric] for p, y in zip(predictions, labels)]
        assert np.allclose(got, expected)


def test_paired_comparison_sees_what_two_separate_intervals_cannot():
    """Two models that differ on 12 of 400 rows: their intervals overlap, yet the paired test is sure."""
    labels = np.zeros(400, dtype=int)
    better = np.zeros(400, dtype=int)
    better[:100] = 1  # 0.75
    worse = better.copy()
    worse[100:112] = 1  # 0.72: wrong on 12 more rows, right on none that `better` gets wrong
    a, b = interval(_logits(better), labels, "accuracy"), interval(_logits(worse), labels, "accuracy")
    assert a.low < b.high  # unpaired, they look alike
    difference = paired_difference(_logits(worse), _logits(better), labels, "accuracy")
    assert difference.value == pytest.approx(-0.03) and difference.high < 0
    p_value = paired_test(_logits(worse), _logits(better), labels, "accuracy")
    assert p_value == pytest.approx(0.5**12, abs=0.002)  # the exact sign test: 12 of 12 discordant rows
    assert not not_worse(p_value) and not_worse(paired_test(_logits(better), _logits(worse), labels, "accuracy"))
    assert paired_test(_logits(better), _logits(better), labels, "accuracy") == 1.0


def test_a_handful_of_rows_is_not_a_significant_difference():
    """Worse on 4 rows of 600 and better on none: the exact one-sided sign test gives 1/16 = 0.0625."""
    labels = np.zeros(600, dtype=int)
    model = np.zeros(600, dtype=int)
    model[:120] = 1
    slightly_worse = model.copy()
    slightly_worse[120:124] = 1
    p_value = paired_test(_logits(slightly_worse), _logits(model), labels, "accuracy")
    assert p_value == pytest.approx(1 / 16, abs=0.02) and not_worse(p_value)
    # the percentile interval of the paired bootstrap would have called it worse (why the test decides)
    assert paired_difference(_logits(slightly_worse), _logits(model), labels, "accuracy").high < 0


def _trials(rows):
    return pd.DataFrame([{"trial_id": t, "preset": p, "trainable_params": n} for t, p, n in rows])


def test_compare_marks_points_within_noise_of_the_best_and_of_full():
    labels = np.zeros(600, dtype=int)
    full = np.zeros(600, dtype=int)
    full[:120] = 1  # 0.80
    close = full.copy()
    close[120:124] = 1  # 0.793: 4 rows worse, within noise
    far = full.copy()
    far[120:180] = 1  # 0.70: clearly worse
    best = full.copy()
    best[:10] = 0  # 0.817: the best
    outputs = {"t-full": _logits(full), "t-close": _logits(close), "t-far": _logits(far), "t-best": _logits(best)}
    trials = _trials([("t-full", "full", 100), ("t-close", None, 10), ("t-far", "layernorm", 1),
                      ("t-best", None, 50)])
    table = compare(outputs, labels, trials, "accuracy", False).set_index("trial_id")
    assert table.loc["t-best", "test_metric"] == pytest.approx(490 / 600)
    assert bool(table.loc["t-full", "not_worse_than_full"]) and bool(table.loc["t-close", "not_worse_than_full"])
    assert not table.loc["t-far", "not_worse_than_full"] and not table.loc["t-far", "not_worse_than_best"]
    assert bool(table.loc["t-best", "not_worse_than_best"])
    assert (table["test_low"] <= table["test_metric"]).all() and (table["test_metric"] <= table["test_high"]).all()
    # without a `full` reference point there is nothing to compare with: None, not False
    table = compare(outputs, labels, _trials([(t, None, 1) for t in outputs]), "accuracy", False)
    assert table["not_worse_than_full"].isna().all()


def _scored(trial_id, params, metric, test, best, full):
    return {"trial_id": trial_id, "trainable_params": params, "metric": metric, "test_metric": test,
            "not_worse_than_best": best, "not_worse_than_full": full}


def test_within_noise_export_choice_is_the_cheapest_not_significantly_worse():
    points = [_scored("huge", 10_000, 0.80, 0.81, True, True), _scored("mid", 1_000, 0.78, 0.79, True, True),
              _scored("small", 100, 0.74, 0.78, False, True), _scored("tiny", 10, 0.60, 0.61, False, False)]
    assert choose(points, within_noise="best")["trial_id"] == "mid"
    assert choose(points, within_noise="full")["trial_id"] == "small"
    with pytest.raises(UsageError, match="not significantly worse than full"):
        choose([{**p, "not_worse_than_full": None} for p in points], within_noise="full")


def test_holdout_scores_the_frontier_and_reference_points_only():
    frame = pd.DataFrame([
        {"trial_id": "a", "status": "completed", "final": True, "checkpoint": "c/a", "preset": "head",
         "trainable_params": 10, "metric": 0.6},
        {"trial_id": "b", "status": "completed", "final": True, "checkpoint": "c/b", "preset": None,
         "trainable_params": 100, "metric": 0.7},
        {"trial_id": "c", "status": "completed", "final": True, "checkpoint": "c/c", "preset": None,
         "trainable_params": 200, "metric": 0.65},  # dominated, not a reference point: never scored
        {"trial_id": "d", "status": "stopped", "final": True, "checkpoint": "c/d", "preset": "bitfit",
         "trainable_params": 50, "metric": 0.5},  # stopped early: never scored
    ])
    front = frame[frame["trial_id"].isin(["a", "b"])]
    assert list(holdout_trials(frame, front)["trial_id"]) == ["a", "b"]
    table = pd.DataFrame([{"trial_id": "b", "test_metric": 0.69, "test_low": 0.6, "test_high": 0.75,
                           "not_worse_than_best": True, "not_worse_than_full": None}])
    out = with_test_columns(frame, table)
    assert out.loc[out["trial_id"] == "b", "test_metric"].item() == 0.69
    assert out.loc[out["trial_id"] != "b", "test_metric"].isna().all()
