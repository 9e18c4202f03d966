"""Task metrics from scikit-learn and scipy (no hub download), and what a constant predictor scores.

Classification reports accuracy, F1 (of the positive class for two labels, macro-averaged over
classes otherwise) and Matthews correlation; regression reports Pearson and Spearman correlation.
A correlation of a constant prediction is undefined; it is reported as 0.0 (no correlation), so
a search never sees NaN for a sub-network that has not learnt yet.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

CLASSIFICATION_METRICS = ("accuracy", "f1", "matthews_correlation")
REGRESSION_METRICS = ("pearson", "spearman")


def metric_names(regression: bool) -> tuple[str, ...]:
    return REGRESSION_METRICS if regression else CLASSIFICATION_METRICS


def _correlation(function, predictions: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) < 2 or np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(function(predictions, labels)[0])
    return 0.0 if math.isnan(value) else value


def compute_metrics(outputs: np.ndarray, labels: np.ndarray, regression: bool) -> dict[str, float]:
    """Every metric of the task kind. `outputs`: logits [rows, classes], or predictions [rows] (regression)."""
    if regression:
        predictions = np.asarray(outputs, dtype=np.float64).reshape(len(labels))
        labels = np.asarray(labels, dtype=np.float64)
        return {"pearson": _correlation(pearsonr, predictions, labels),
                "spearman": _correlation(spearmanr, predictions, labels)}
    outputs = np.asarray(outputs)
    predictions = outputs.argmax(-1) if outputs.ndim == 2 else outputs
    classes = outputs.shape[-1] if outputs.ndim == 2 else int(max(predictions.max(), labels.max())) + 1
    binary = classes == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined F1/MCC (one class predicted) is 0, as sklearn returns
        return {
            "accuracy": float(accuracy_score(labels, predictions)),
            "f1": float(f1_score(labels, predictions, average="binary" if binary else "macro",
                                 labels=None if binary else list(range(classes)), zero_division=0)),
            "matthews_correlation": float(matthews_corrcoef(labels, predictions)),
        }


def constant_baseline(train_labels: np.ndarray, labels: np.ndarray, regression: bool) -> dict[str, float]:
    """Metrics of predicting the training set's majority class (or mean) for every row."""
    if regression:
        return compute_metrics(np.full(len(labels), float(np.mean(train_labels))), labels, True)
    majority = int(np.bincount(train_labels).argmax())
    classes = int(max(train_labels.max(), labels.max())) + 1
    logits = np.zeros((len(labels), classes))
    logits[:, majority] = 1.0
    return compute_metrics(logits, labels, False)
