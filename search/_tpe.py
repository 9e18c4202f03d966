"""The product's TPE sampler: Optuna's, with the relative search space kept once it is known.

Optuna's multivariate TPE asks, for every proposal, for the intersection of the distributions of all finished
trials (`IntersectionSearchSpace`). It caches that only up to the oldest unfinished trial, and in a search the
oldest unfinished trials stay unfinished for long: those running, and those Pareto-ASHA paused for a second
chance. So each proposal scanned nearly every trial again, and the driver's cost per proposal grew with the
trials (bench/driver_scale.py: py-spy found it there). A ticketsearch space suggests the same parameters in
every trial (spaces.SubnetworkSpace), so the intersection, once a trial has finished, does not change: it is
computed until then and kept after, and the proposals are the ones Optuna's TPE makes.
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import TPESampler


class StaticSpaceTPESampler(TPESampler):
    """TPESampler whose relative search space is computed until a finished trial defines it, then kept."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._kept_space: dict | None = None

    def infer_relative_search_space(self, study, trial) -> dict:
        if self._kept_space is not None:
            return dict(self._kept_space)
        space = super().infer_relative_search_space(study, trial)
        if space:  # a finished trial defined it: every later one suggests the same parameters
            self._kept_space = dict(space)
        return space
