"""Pareto fronts and hypervolume over (task metric: maximise, trainable parameters: minimise).

Thin wrappers over Optuna's own non-dominated sorting and exact hypervolume, so the search and
the benchmarks use one definition. Hypervolume is measured on (metric, log10 trainable params)
against a fixed reference point: (majority-class metric, log10 of all parameters), so a run's
figure is comparable with any other run on the same model and task.
"""

from __future__ import annotations

import math

import numpy as np
from optuna._hypervolume import compute_hypervolume  # optuna==5.0.0 (pinned)
from optuna.study._multi_objective import _is_pareto_front


def _losses(metric, params) -> np.ndarray:
    metric = np.asarray(metric, dtype=float)
    params = np.asarray(params, dtype=float)
    if metric.shape != params.shape:
        raise ValueError("metric and params must have the same length")
    return np.column_stack([-metric, np.log10(params)])


def pareto_mask(metric, params) -> np.ndarray:
    """True where a point is non-dominated (higher metric, fewer params). Duplicates all stay."""
    if len(metric) == 0:
        return np.zeros(0, dtype=bool)
    return _is_pareto_front(_losses(metric, params), assume_unique_lexsorted=False)


def reference_point(majority_metric: float, total_params: int) -> tuple[float, float]:
    return float(majority_metric), math.log10(total_params)


def hypervolume(metric, params, reference: tuple[float, float]) -> float:
    """Area dominated by the points and bounded by `reference` in (metric, log10 params) space.

    Points that do not beat the reference in both coordinates add nothing and are dropped.
    """
    losses = _losses(metric, params)
    ref = np.array([-reference[0], reference[1]])
    inside = np.all(losses < ref, axis=1)
    if not inside.any():
        return 0.0
    return float(compute_hypervolume(losses[inside], ref))
