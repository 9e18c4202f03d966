"""OptunaSearch that tells Optuna the truth about early-stopped trials, and never trains a repeat."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search import compat
from search.steer.pareto import pareto_mask
from search.steer.strategies import RANDOM_ALWAYS, sampler_origin, startup_trials
from search.storage.location import RunLocation
from trainables import FAILED

logger = logging.getLogger(__name__)

# Proposals in a row that were all repeats: the sampler has nothing new to offer (a small discrete
# space is exhausted, or the sampler has converged), so the search ends instead of spinning.
MAX_REPEATS_IN_A_ROW = 100


def proposal_key(config: dict) -> str:
    """What makes two proposals the same training run: the same units, learning rate and seed."""
    return json.dumps([sorted(config["units"]), config.get("lr"), config.get("seed")])


class ParetoOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch for a multi-objective study, with honest trial states and no repeats.

    Ray reports a trial that the scheduler stopped early as complete, with its last (partial)
    values; Optuna would then rank a sub-network trained for one epoch against ones trained for
    the full budget, which poisons the sampler. Here such a trial is told as PRUNED (no values),
    an errored trial as FAIL, and only a trial that reached `max_epochs` as COMPLETE.

    A trial Pareto-ASHA pauses (below its rung's cut, kept for a second chance) is told as PRUNED at
    once, as a stop is, so the sampler learns from it while the search goes on (`on_trial_paused`);
    should it be promoted and reach `max_epochs`, its values are added to the study as a trial of
    their own.

    Optuna's samplers re-propose configurations already tried, often in small discrete spaces. A
    repeat (same units, learning rate and seed) is never trained again: it is answered from what the
    run measured (the same values, or PRUNED/FAIL as the original ended), at once if the original
    has finished, or when it does. `repeats` counts them. After MAX_REPEATS_IN_A_ROW repeats in a
    row the searcher reports that it is finished.

    `trial_seconds`: a compute budget. Once the reported epochs' seconds (`seconds_attr`), summed over all
    trials, reach it, the searcher proposes nothing more (running trials finish; Pareto-ASHA promotes no
    paused one, see `budget_spent`), so strategies compared at one budget spend the same trial-seconds.

    `fill_gaps` (K > 0): every K-th proposal, once two sub-networks have finished, fills the widest gap
    of the front found so far: `gap_point(low, high, rng)` (the space's) gives a setting whose
    trainable parameters lie between two neighbouring front points (in log10 parameters, the
    widest such gap), and Optuna is asked for it (`enqueue_trial`; the sampler draws the rest,
    such as the learning-rate scale). Parameter counts are known before anything trains, and a
    log-parameter hypervolume rewards a front without holes.

    `store`: with remote storage, the run's location; the journal and the scheduler's rungs
    (`store_files`) go up at every snapshot, before this searcher's state, so the uploaded journal
    always holds every trial that state knows. `relocate(folder)` keeps them in another folder
    (a run resumed on another machine, or a moved run folder). Ray's OptunaSearch state that this
    subclass extends is named in search.compat.OPTUNA_SEARCH_STATE.
    """

    __module__ = "search"  # pickled by Ray with each run: a path that stays where the module moves

    def __init__(self, *args, max_epochs: int, budget_attr: str = "epoch", store: RunLocation | None = None,
                 store_files: tuple[str, ...] = (), fill_gaps: int = 0, gap_point=None, seed: int = 0,
                 trial_seconds: float | None = None, seconds_attr: str = "epoch_seconds", **kwargs):
        super().__init__(*args, **kwargs)
        self.trial_seconds, self._seconds_attr = trial_seconds, seconds_attr
        self.spent_seconds = 0.0  # every reported epoch's seconds, summed over the trials
        self.fill_gaps, self._gap_point = int(fill_gaps), gap_point
        self._gap_rng = np.random.default_rng(seed)
        self._finals: list[tuple[float, float]] = []  # (metric, trainable params) of full-budget trials
        self._proposed = 0
        self.gap_proposals = 0
        self._told_paused: set[str] = set()  # paused trials Optuna was told PRUNED (restore keeps __init__'s)
        self.store, self.store_files = store, tuple(store_files)
        self._driver_dir: str | None = None
        self._max_epochs = max_epochs
        self._budget_attr = budget_attr
        self._key_of: dict[str, str] = {}  # Ray trial id -> proposal key
        self._outcome: dict[str, tuple] = {}  # proposal key -> (state, values) once its trial ended
        self._waiting: dict[str, list] = {}  # proposal key -> Optuna trials of repeats, told when it ends
        self.repeats = 0

    def _widest_gap(self) -> tuple[float, float] | None:
        """The two neighbouring front points (by trainable parameters) furthest apart in log10 parameters."""
        if len(self._finals) < 2:
            return None
        metric, params = zip(*self._finals)
        keep = pareto_mask(list(metric), list(params))
        # A point off the front never returns to it: only the front is kept (a sort over every full-budget
        # trial at every gap proposal grew with the search: bench/driver_scale.py).
        self._finals = [f for f, k in zip(self._finals, keep) if k]
        front = sorted({p for p, k in zip(params, keep) if k})
        if len(front) < 2:
            return None
        widths = np.diff(np.log10(front))
        i = int(np.argmax(widths))
        return (front[i], front[i + 1]) if widths[i] > np.log10(2) else None

    def _maybe_fill_gap(self) -> None:
        self._proposed += 1
        if not self.fill_gaps or self._gap_point is None or self._proposed % self.fill_gaps:
            return
        if self._state.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # given points go first
            return
        gap = self._widest_gap()
        setting = self._gap_point(*gap, self._gap_rng) if gap else None
        if setting is not None:
            self._state.study.enqueue_trial(setting, skip_if_exists=False)
            self.gap_proposals += 1

    @property
    def budget_spent(self) -> bool:
        """True once the trials have trained for `trial_seconds` in all: no new proposal, no promotion."""
        budget = getattr(self, "trial_seconds", None)  # getattr: searchers pickled before the budget existed
        return budget is not None and getattr(self, "spent_seconds", 0.0) >= budget

    def _count_seconds(self, trial_id: str, result: dict | None) -> None:
        """Add a result's epoch seconds to the budget spent, once per (trial, epoch): Ray passes a result the
        scheduler stops on (a trial's last) to on_trial_complete only, others to both or to on_trial_result
        only, and a retried trial reports an epoch again."""
        seconds = (result or {}).get(getattr(self, "_seconds_attr", "epoch_seconds"))
        epoch = (result or {}).get(self._budget_attr)
        counted = self.__dict__.setdefault("_counted_epoch", {})  # searchers pickled before the budget lack it
        if not isinstance(seconds, (int, float)) or epoch is None or epoch <= counted.get(trial_id, 0):
            return
        counted[trial_id] = epoch
        self.spent_seconds = getattr(self, "spent_seconds", 0.0) + float(seconds)

    def on_trial_result(self, trial_id: str, result: dict):
        self._count_seconds(trial_id, result)
        return super().on_trial_result(trial_id, result)

    def suggest(self, trial_id: str):
        if self.budget_spent:
            logger.info("the trials have trained for %.0f s (--trial-seconds %g): no new proposal",
                        self.spent_seconds, self.trial_seconds)
            return Searcher.FINISHED
        gaps = self.gap_proposals
        self._maybe_fill_gap()
        for _ in range(MAX_REPEATS_IN_A_ROW):
            origin = self._origin(filled=self.gap_proposals > gaps)
            config = super().suggest(trial_id)
            if not isinstance(config, dict):
                return config
            key = proposal_key(config)
            if key not in self._outcome and key not in self._waiting:
                self._key_of[trial_id] = key
                self._waiting[key] = []
                config["origin"] = origin if origin != "given" else ("reference" if config.get("preset") else "spread")
                return config
            # A repeat: its Optuna trial is answered from the original, and a new proposal is asked for.
            self.repeats += 1
            ot_trial = self._state.trials.pop(trial_id)
            if key in self._outcome:
                state, values = self._outcome[key]
                self._state.study.tell(ot_trial, values, state=state)
            else:
                self._waiting[key].append(ot_trial)
        logger.warning("the sampler proposed %d repeats in a row: no new sub-network to try, the search ends",
                       MAX_REPEATS_IN_A_ROW)
        return Searcher.FINISHED

    def _origin(self, filled: bool) -> str:
        """Where the next proposal comes from (search.steer.strategies.ORIGINS): `given` (a point waiting in the
        study: a reference or spread point), `gap`, or the sampler's `startup` or `model`."""
        study = self._state.study
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # the journal lists these cheaply
            return "gap" if filled else "given"
        if getattr(self, "_from_results", False):  # once past its start, for good: no listing of every trial
            return "model"
        if startup_trials(study.sampler) >= RANDOM_ALWAYS:
            return "startup"
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        origin = sampler_origin(study.sampler, finished)
        self._from_results = origin == "model"
        return origin

    def on_trial_paused(self, trial_id: str) -> None:
        """Told by Pareto-ASHA (Ray has no pause hook for searchers): Optuna hears PRUNED now."""
        if trial_id in self._state.trials and trial_id not in self._state.completed:
            self.on_trial_complete(trial_id, None)
            self._told_paused.add(trial_id)

    def _promoted_complete(self, trial_id: str, result: dict | None, error: bool) -> None:
        """A paused trial told PRUNED has ended: if it was promoted and finished, its values join the study."""
        self._told_paused.discard(trial_id)
        if error or (result or {}).get(self._budget_attr, 0) < self._max_epochs or FAILED in (result or {}):
            return
        import optuna

        assert result is not None  # reached the last epoch above
        asked = self._state.trials[trial_id]
        values = [result[m] for m in self._state.metrics]
        self._finals.append((float(values[0]), float(values[1])))
        self._state.study.add_trial(optuna.trial.create_trial(
            params=asked.params, distributions=asked.distributions, values=values))
        key = self._key_of.get(trial_id)
        if key is not None:
            self._outcome[key] = (TrialState.COMPLETE, values)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self._count_seconds(trial_id, result)
        if trial_id in self._told_paused:
            return self._promoted_complete(trial_id, result, error)
        if trial_id not in self._state.trials:
            # A restored run whose experiment state was saved after this searcher's (Ray uploads a
            # snapshot file by file): a trial this searcher never proposed. Nothing to tell Optuna.
            logger.warning("trial %s is unknown to the restored searcher; its result is not told to Optuna", trial_id)
            return None
        if trial_id in self._state.completed:
            return super().on_trial_complete(trial_id, result, error)
        reached = (result or {}).get(self._budget_attr, 0) >= self._max_epochs
        error = error or FAILED in (result or {})  # ended on a failure a retry cannot fix (trainables._failures)
        if error or not reached:
            state, values = (TrialState.FAIL if error else TrialState.PRUNED), None
            self._state.study.tell(self._state.trials[trial_id], None, state=state)
            self._state.completed.add(trial_id)
        else:
            assert result is not None  # reached the last epoch
            super().on_trial_complete(trial_id, result, error)
            state, values = TrialState.COMPLETE, [result[m] for m in self._state.metrics]
            self._finals.append((float(values[0]), float(values[1])))
        key = self._key_of.get(trial_id)
        if key is not None:
            self._outcome[key] = (state, values)
            for ot_trial in self._waiting.pop(key, []):
                self._state.study.tell(ot_trial, values, state=state)
        return None

    @property
    def _state(self) -> compat.OptunaSearchState:
        """The state of OptunaSearch this class extends (its study, trial map, told trials), through search.compat."""
        return compat.optuna_search_state(self)

    @property
    def study(self):
        """The Optuna study this searcher tells (every trial's state and values)."""
        return self._state.study

    def optuna_number(self, trial_id: str) -> int:
        """The number of the Optuna trial that a Ray trial was proposed as."""
        return self._state.trials[trial_id].number

    # -- state that travels with Ray's experiment snapshots ---------------------------------
    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default"):
        store = getattr(self, "store", None)  # getattr: runs saved before it existed resume too
        if store is not None:
            try:
                store.push(self.store_files)
            except OSError as exc:  # storage unreachable for a moment: the next snapshot tries again
                logger.warning("could not upload %s to %s: %s", self.store_files, self.store, exc)
        super().save_to_dir(checkpoint_dir, session_str)

    def restore(self, checkpoint_path: str):
        driver_dir = getattr(self, "_driver_dir", None)  # set by this driver; the saved state names the old one
        super().restore(checkpoint_path)
        if driver_dir:
            self.relocate(driver_dir)

    def relocate(self, driver_dir: str | os.PathLike) -> None:
        """Keep the study's journal (and upload the store's files) from `driver_dir` (same file names)."""
        self._driver_dir = str(driver_dir)
        store = getattr(self, "store", None)
        if store is not None:
            self.store = dataclasses.replace(store, local=Path(driver_dir))
        journal = compat.study_journal_path(self._state.study)
        if journal is not None and journal != (moved := str(Path(driver_dir, Path(journal).name))):
            compat.reopen_journal(self._state.study, moved)
