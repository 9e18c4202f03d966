"""Pareto fronts and hypervolume over (task metric: maximise, trainable parameters: minimise).

Thin wrappers over Optuna's own non-dominated sorting and exact hypervolume (through
search.compat), so the search, the report and the benchmarks use one definition. Hypervolume is
measured on (metric, log10 trainable params) against a fixed reference point: (majority-class
metric, log10 of all parameters), so a run's figure is comparable with any other run on the same
model and task.
"""

from __future__ import annotations

import math

import numpy as np

from search import compat


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
    return compat.pareto_front_mask(_losses(metric, params))


def reference_point(majority_metric: float, total_params: int) -> tuple[float, float]:
    """The hypervolume's reference in (metric, log10 params): the majority class's metric, all parameters."""
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
    return compat.hypervolume(losses[inside], ref)


def non_domination_ranks(losses) -> np.ndarray:
    """Front index of each row of `losses` (all objectives minimised): 0 for the non-dominated
    rows, 1 for those non-dominated once front 0 is removed, and so on."""
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=int)
    return compat.non_domination_ranks(losses)


def crowding_distance(losses) -> np.ndarray:
    """NSGA-II crowding distance of each row of `losses`, each objective scaled to its range.

    The two ends of each objective get infinity, so a front's extremes (the cheapest and the best
    sub-network) are preferred over its middle.
    """
    points = np.asarray(losses, dtype=float)
    n = len(points)
    if n <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(n)
    for column in points.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def hypervolume_curve(metric, params, epochs, max_epochs: int, reference: tuple[float, float]) -> np.ndarray:
    """Hypervolume after each reported epoch, in the order given: of the points that had reached the
    full budget (`epochs >= max_epochs`) by then. What a search has found, as compute is spent."""
    metric, params, epochs = np.asarray(metric, float), np.asarray(params, float), np.asarray(epochs)
    out, done, hv = np.zeros(len(metric)), [], 0.0
    for i in range(len(metric)):
        if epochs[i] >= max_epochs:
            done.append(i)
            hv = hypervolume(metric[done], params[done], reference)
        out[i] = hv
    return out
