"""The search strategy: which Optuna sampler proposes sub-networks, which scheduler stops trials early.

`make_sampler` and `make_scheduler` are what `python -m search.run` uses and what the benchmarks
compare, so a benchmarked strategy is exactly the product's.
"""

from __future__ import annotations

import math

from search.settings.config import MIN_RUNG_STEPS
from search.steer.pareto_asha import ParetoASHA
from search.steer.tpe import StaticSpaceTPESampler

REDUCTION_FACTOR = 3  # ASHA's: each rung keeps about a third of the trials, and comes 3 times later than the last


def first_rung(grace_period: int | str, train_rows: int, batch_size: int) -> int:
    """The first rung in epochs: `grace_period` itself, or for `auto` the fewest epochs that hold at least
    MIN_RUNG_STEPS optimizer steps (`train_rows` rows in batches of `batch_size`): a rung counted in the
    updates a sub-network has had, not in passes over however much data there is."""
    if grace_period != "auto":
        return int(grace_period)
    steps_per_epoch = max(1, math.ceil(train_rows / batch_size))
    return max(1, math.ceil(MIN_RUNG_STEPS / steps_per_epoch))


def decision_epochs(scheduler: str, grace_period: int, max_epochs: int) -> tuple[int, ...]:
    """The epochs whose validation metric a search reads: the early-stopping rungs (`grace_period` x 3^k below
    `max_epochs`; none for `none`) and the last. A trial is validated after these alone (trainables.TrialSettings)."""
    rungs = []
    if scheduler != "none":
        rung = max(1, grace_period)
        while rung < max_epochs:
            rungs.append(rung)
            rung *= REDUCTION_FACTOR
    return (*rungs, max_epochs)


def make_sampler(name: str, seed: int, **options):
    """Optuna's sampler of that name, set for small budgets; `options` override its settings."""
    import optuna

    if name == "tpe":
        # 5 random startup trials, not Optuna's 10. The reference points count among them (they are finished
        # trials of the study): a default run's sampler proposes from results once 5 of them have finished.
        # Optuna's TPE, its search space kept once known (search.steer.tpe: a proposal's cost no longer grows with
        # the trials held unfinished, such as Pareto-ASHA's paused ones).
        return StaticSpaceTPESampler(**{"seed": seed, "multivariate": True, "n_startup_trials": 5, **options})
    if name == "nsga2":
        # NSGA-II samples at random for its first population: keep the population small for small budgets.
        return optuna.samplers.NSGAIISampler(**{"seed": seed, "population_size": 10, **options})
    if name == "gp":
        # Gaussian-process BO; fits a model per proposal, worth it when trials are expensive.
        return optuna.samplers.GPSampler(**{"seed": seed, "n_startup_trials": 5, **options})
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    raise ValueError(f"unknown sampler {name!r}")


# Where a proposal came from (trials.parquet's `origin`; the plan and the run's summary count them): a given point
# (a reference point, or a setting spread over parameter budgets), a gap of the front filled, the sampler's own
# random start, or the sampler's model of the results so far.
ORIGINS = ("reference", "spread", "gap", "startup", "model")
RANDOM_ALWAYS = 2**62  # startup_trials of a sampler that never proposes from results


def startup_trials(sampler) -> int:
    """How many finished trials the sampler draws at random before it proposes from results (0: never random;
    a RandomSampler: always)."""
    import optuna

    if isinstance(sampler, optuna.samplers.RandomSampler):
        return RANDOM_ALWAYS
    if isinstance(sampler, optuna.samplers.NSGAIISampler):
        return int(getattr(sampler, "_population_size", 0))  # its first generation is drawn at random
    return int(getattr(sampler, "_n_startup_trials", 0))  # TPE, GP


def sampler_origin(sampler, finished: int) -> str:
    """`startup` while the sampler has fewer than its startup count of finished trials (it draws at random),
    else `model` (it proposes from what the finished trials scored)."""
    return "startup" if finished < startup_trials(sampler) else "model"


def make_scheduler(name: str, metric: str, max_epochs: int, state_path: str | None = None,
                   protect_key: str | None = "preset", second_chance: bool = True, grace_period: int = 1):
    """The early-stopping scheduler: `pareto-asha` (the default), `asha` (on the metric alone) or `none`.

    `protect_key`: the result key naming a reference point, which Pareto-ASHA never stops (None: none is).
    `second_chance`: Pareto-ASHA pauses the trials below its cut and promotes them later, as ASHA does,
    instead of stopping them for good (False: the benchmark's ablation). `grace_period`: the first rung, in
    epochs (`asha` too); at `max_epochs` or beyond, nothing is stopped early.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    grace_period = min(grace_period, max_epochs)  # max_epochs: no rung below the full budget
    if name == "pareto-asha":
        return ParetoASHA(
            metric=metric, mode="max", tie_breaker="eval_loss", cost_attr="trainable_params", time_attr="epoch",
            max_t=max_epochs, grace_period=grace_period, reduction_factor=REDUCTION_FACTOR, protect_key=protect_key,
            state_path=state_path, second_chance=second_chance,
        )
    if name == "asha":
        return ASHAScheduler(metric=metric, mode="max", time_attr="epoch", max_t=max_epochs,
                             grace_period=grace_period, reduction_factor=REDUCTION_FACTOR)
    if name == "none":
        return FIFOScheduler()
    raise ValueError(f"unknown scheduler {name!r}")
