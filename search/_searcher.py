"""OptunaSearch that tells Optuna the truth about trials that early stopping cut short."""

from __future__ import annotations

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch


class ParetoOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch for a multi-objective study, with honest trial states.

    Ray reports a trial that the scheduler stopped early as complete, with its last (partial)
    values; Optuna would then rank a sub-network trained for one epoch against ones trained for
    the full budget, which poisons the sampler. Here such a trial is told as PRUNED (no values),
    an errored trial as FAIL, and only a trial that reached `max_epochs` as COMPLETE.
    """

    def __init__(self, *args, max_epochs: int, budget_attr: str = "epoch", **kwargs):
        super().__init__(*args, **kwargs)
        self._max_epochs = max_epochs
        self._budget_attr = budget_attr

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        reached = (result or {}).get(self._budget_attr, 0) >= self._max_epochs
        if error or not reached:
            state = TrialState.FAIL if error else TrialState.PRUNED
            self._ot_study.tell(self._ot_trials[trial_id], None, state=state)
            self._completed_trials.add(trial_id)
            return None
        return super().on_trial_complete(trial_id, result, error)
