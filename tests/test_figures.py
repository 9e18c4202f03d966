"""The report's figures say what they show: curves only where a trial has two epochs of them, no empty axis."""

import numpy as np
import pandas as pd

from search.results.figures import curve_kinds, learning_curves, weights_figure


def _trials(epochs: int, validated_every_epoch: bool) -> pd.DataFrame:
    rows = []
    for t, params in enumerate((770, 3_000, 22_000_000)):
        for epoch in range(1, epochs + 1):
            last = epoch == epochs
            rows.append({"trial_id": f"t{t}", "epoch": epoch, "train_loss": 0.7 - 0.1 * epoch - 0.01 * t,
                         "metric": 0.6 + 0.05 * epoch + 0.01 * t if (last or validated_every_epoch) else np.nan,
                         "final": last, "status": "completed", "trainable_params": params,
                         "selection": f"ticket {t}"})
    return pd.DataFrame(rows)


def test_curves_are_drawn_from_what_each_epoch_recorded():
    assert curve_kinds(_trials(3, validated_every_epoch=False)) == ["train_loss"]  # the default: validated once
    assert curve_kinds(_trials(3, validated_every_epoch=True)) == ["train_loss", "metric"]
    assert curve_kinds(_trials(1, validated_every_epoch=True)) == []
    assert learning_curves(_trials(1, True), "accuracy", 1) is None  # one dot per trial is no curve
    assert learning_curves(_trials(3, False), "accuracy", 3)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_weight_figure_has_a_second_axis_only_with_module_types_trained_alone():
    import matplotlib.pyplot as plt

    weights = pd.Series({"query": 0.05, "attn.norm": 0.9})
    drawn = []
    original = plt.Axes.twinx

    def twinx(ax):
        drawn.append(ax)
        return original(ax)

    plt.Axes.twinx = twinx
    try:
        assert weights_figure(weights, pd.Series(dtype=float), "accuracy") is not None
        assert drawn == []  # no module type alone: no axis without data
        assert weights_figure(weights, pd.Series({"attn.norm": 0.8}), "accuracy") is not None
        assert len(drawn) == 1
    finally:
        plt.Axes.twinx = original
    assert weights_figure(pd.Series({"query": np.nan}), pd.Series(dtype=float), "accuracy") is None
