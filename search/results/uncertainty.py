"""How sure a test number is: bootstrap intervals over test rows, and paired comparisons.

A sub-network's test metric is one draw: 384 rows give an accuracy whose standard error is
about 2.5 points. `interval` resamples the test rows (scipy's bootstrap, percentile method) for
a confidence interval of the metric. Two sub-networks scored on the same rows are compared
paired, row by row: their errors are correlated, so their difference is known far better than
either number. `paired_difference` is the paired bootstrap interval of that difference;
`paired_test` the one-sided paired randomisation test (scipy's permutation_test, swapping the
two models' outputs row by row: approximate randomisation, the usual significance test for NLP
metrics), which decides *not significantly worse*. The test rather than the bootstrap interval
decides, because a percentile interval of a difference that rests on a handful of rows is too
sure of itself: a model that loses 4 of 600 rows and wins none has a paired-bootstrap interval
below zero, while the exact sign test gives p = 0.06 (tests/test_uncertainty.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, permutation_test, rankdata

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # one-sided: 'significantly worse' needs p < 0.05
RESAMPLES = 2000


def predictions(outputs: np.ndarray, regression: bool) -> np.ndarray:
    """Class predictions (argmax of logits) or regression values, one per row."""
    outputs = np.asarray(outputs)
    if regression:
        return outputs.reshape(len(outputs)).astype(np.float64)
    return outputs.argmax(-1) if outputs.ndim == 2 else outputs


def _confusion(p: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Confusion counts [..., true, predicted] of each stack of resampled rows."""
    index = (y * classes + p).astype(np.int64)
    flat = np.stack([(index == k).sum(-1) for k in range(classes * classes)], axis=-1)
    return flat.reshape(*flat.shape[:-1], classes, classes).astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return _ratio((a * b).sum(-1), np.sqrt((a * a).sum(-1) * (b * b).sum(-1)))


def metric_function(metric: str, regression: bool, classes: int):
    """metric(predictions, labels, axis=-1) on any stack of resampled rows, vectorised: the same
    definitions as trainables._metrics (binary F1 of class 1, macro F1 otherwise; an undefined
    F1, MCC or correlation is 0)."""
    if regression:
        if metric == "spearman":
            return lambda p, y, axis=-1: _pearson(rankdata(p, axis=-1), rankdata(y, axis=-1))
        return lambda p, y, axis=-1: _pearson(np.asarray(p, float), np.asarray(y, float))
    if metric == "accuracy":
        return lambda p, y, axis=-1: np.mean(p == y, axis=-1)

    def score(p, y, axis=-1):
        c = _confusion(p, y, classes)
        tp = np.diagonal(c, axis1=-2, axis2=-1)
        true, predicted = c.sum(-1), c.sum(-2)
        if metric == "f1":
            f1 = _ratio(2 * tp, true + predicted)
            return f1[..., 1] if classes == 2 else f1.mean(-1)
        n = c.sum((-2, -1))
        covariance = tp.sum(-1) * n - (true * predicted).sum(-1)
        return _ratio(covariance, np.sqrt((n**2 - (predicted**2).sum(-1)) * (n**2 - (true**2).sum(-1))))

    return score


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def _classes(labels: np.ndarray, *preds: np.ndarray) -> int:
    return int(max(np.max(labels), *(np.max(p) for p in preds))) + 1


def interval(outputs: np.ndarray, labels: np.ndarray, metric: str, regression: bool = False,
             confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The test metric of one sub-network and its bootstrap confidence interval over test rows."""
    p, y = predictions(outputs, regression), np.asarray(labels)
    score = metric_function(metric, regression, 0 if regression else max(_classes(y, p), 2))
    value = float(np.squeeze(score(p, y)))
    result = bootstrap((p, y), score, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=confidence, method="percentile", random_state=seed)
    low, high = result.confidence_interval
    return Interval(value, float(np.nan_to_num(low, nan=value)), float(np.nan_to_num(high, nan=value)))


def paired_difference(outputs: np.ndarray, other: np.ndarray, labels: np.ndarray, metric: str,
                      regression: bool = False, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = 0) -> Interval:
    """metric(outputs) - metric(other) on the same test rows, with a paired bootstrap interval."""
    a, b, y = predictions(outputs, regression), predictions(other, regression), np.asarray(labels)
    score = metric_function(metric, regression, 0 if regression else max(_classes(y, a, b), 2))

    def difference(pa, pb, yy, axis=-1):
        return score(pa, yy, axis) - score(pb, yy, axis)

    value = float(np.squeeze(difference(a, b, y)))
    if np.array_equal(a, b):  # the same predictions: no difference on any resample
        return Interval(value, value, value)
    result = bootstrap((a, b, y), difference, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=confidence, method="percentile", random_state=seed)
    low, high = result.confidence_interval
    return Interval(value, float(np.nan_to_num(low, nan=value)), float(np.nan_to_num(high, nan=value)))


def paired_test(outputs: np.ndarray, other: np.ndarray, labels: np.ndarray, metric: str,
                regression: bool = False, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """p-value of "`outputs` scores lower than `other` on these rows" (one-sided paired randomisation test)."""
    a, b, y = predictions(outputs, regression), predictions(other, regression), np.asarray(labels)
    if np.array_equal(a, b):
        return 1.0
    score = metric_function(metric, regression, 0 if regression else max(_classes(y, a, b), 2))

    def difference(pa, pb, axis=-1):
        return score(pa, y, axis) - score(pb, y, axis)

    result = permutation_test((a, b), difference, permutation_type="samples", vectorized=True,
                              n_resamples=resamples, alternative="less", random_state=seed)
    return float(result.pvalue)


def not_worse(p_value: float) -> bool:
    """True when a paired test's p-value does not show this sub-network significantly worse."""
    return p_value >= SIGNIFICANCE
