"""Pareto-aware asynchronous successive halving: early stopping that keeps cheap sub-networks alive."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search import compat
from search.steer.pareto import crowding_distance, non_domination_ranks


class ParetoASHA(FIFOScheduler):
    """Asynchronous successive halving that ranks trials by non-dominated sorting over two objectives.

    ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) stops a
    trial at a rung unless it is in the top 1/`reduction_factor` of the trials recorded there. Ranked
    on the task metric alone, it stops the small sub-networks first (they learn slowest), and those are
    the low-parameter end of the frontier a user came for. Here, as in MO-ASHA (Schmucker et al.,
    "Multi-objective Asynchronous Successive Halving", 2021), a trial's standing at a rung is its
    position when the recorded trials are ordered by non-domination rank over (metric, trainable
    parameters), ties within a front broken by crowding distance (front ends first, then the most
    isolated). The trial continues if its own position is within the top ceil(n / reduction_factor)
    of the n trials recorded at that rung, or if it is an end of the first front: the best metric
    or the fewest parameters at that rung. The parameter count is known from the first result, so
    the cheapest trial at a rung always goes on (it also costs the least to go on), and a trial
    dominated at its rung goes on only while few trials have been recorded there.

    A second chance, as ASHA's own promotions give one (`second_chance`, on by default): a trial
    below the cut is paused, not stopped, with its checkpoint. Judged on arrival, an early trial is
    ranked against the few recorded before it; ASHA proper promotes whatever ranks within the top
    ceil(n / reduction_factor) of a rung as n grows. Here a new proposal always goes first (ASHA's
    order, promotions first, spent the budget on old proposals: in the benchmark it slowed the
    search), so the second chance uses the end of a search: once the searcher has no more proposals,
    a worker that frees resumes a paused trial that now ranks within its rung's cut (highest rung
    first), and when none does and nothing runs, the paused trials left are stopped (Optuna is told
    they were pruned), and the search ends.

    A validation metric such as accuracy moves in coarse steps and, early in training, often sits
    at the majority class for every small sub-network alike: then the cheapest one dominates all
    the others and a rung learns nothing. `tie_breaker` (the validation loss) is added to the
    ranking as a third objective, so a sub-network whose loss already falls is not dominated by a
    cheaper one that has not moved.

    Args:
        metric: result key of the task metric.
        mode: "max" or "min" for `metric`.
        tie_breaker: result key of a finer-grained quality measure, minimised (None: rank on
            metric and cost alone). Used only when a result reports it.
        protect_key: a config key; trials whose config has a truthy value there are recorded at
            the rungs (they inform the ranking) but never stopped. The search uses it for the
            reference points (full, head, BitFit, LayerNorms, each module alone): they are the
            anchors every frontier is compared with, so they always get the full budget.
        cost_attr: result key of the second objective, always minimised (trainable parameters).
        time_attr: result key of the budget (epochs); rungs are grace_period * reduction_factor**k.
        max_t: the full budget; a trial that reaches it stops.
        grace_period: the first rung. 1 epoch: the first decision comes after one epoch.
        reduction_factor: eta. 3 keeps a third at each rung, the usual ASHA setting.
        state_path: JSON file that holds the rungs, rewritten after every decision. Ray does not
            save scheduler state in its experiment checkpoint, so `Tuner.restore` gets back the
            scheduler as it was pickled at the start; it reloads its rungs from this file (which
            trials are paused, Ray's own experiment state says).
        second_chance: pause trials below the cut and promote them later (True), or stop them.
    """

    __module__ = "search"  # pickled by Ray with each run: a path that stays where the module moves

    def __init__(
        self,
        metric: str,
        mode: str = "max",
        tie_breaker: str | None = "eval_loss",
        protect_key: str | None = None,
        cost_attr: str = "trainable_params",
        time_attr: str = "epoch",
        max_t: int = 3,
        grace_period: int = 1,
        reduction_factor: float = 3,
        state_path: str | None = None,
        second_chance: bool = True,
    ):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        if grace_period < 1 or max_t < grace_period:
            raise ValueError("need 1 <= grace_period <= max_t")
        if reduction_factor <= 1:
            raise ValueError("reduction_factor must be greater than 1")
        super().__init__()
        self._metric, self._mode = metric, mode
        self.cost_attr, self.time_attr, self.tie_breaker = cost_attr, time_attr, tie_breaker
        self.protect_key = protect_key
        self.max_t, self.reduction_factor = max_t, reduction_factor
        milestones: list[float] = []
        rung: float = grace_period
        while rung < max_t:
            milestones.append(rung)
            rung *= reduction_factor
        self.milestones = tuple(milestones)
        # rung -> trial id -> (metric, cost, tie-breaker or NaN)
        self.rungs: dict[float, dict[str, tuple[float, float, float]]] = {m: {} for m in self.milestones}
        self.state_path = state_path
        self._loaded = False
        self.second_chance = second_chance
        self.decisions = {"continue": 0, "stop": 0, "promote": 0}
        self.paused: set[str] = set()  # below the cut and not promoted (yet): kept paused across a --resume
        self._version = 0  # bumped at every record: promotions are recomputed only when a rung changed
        self._promotions: tuple[tuple, list[str]] = ((), [])

    # -- Ray Tune hooks --------------------------------------------------------------------
    def set_search_properties(self, metric, mode, **spec) -> bool:
        # Metric and mode are this scheduler's own (the searcher has two objectives): keep them.
        return True

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._load_once()
        budget = result.get(self.time_attr)
        if budget is None or self._metric not in result or self.cost_attr not in result:
            return TrialScheduler.CONTINUE
        if budget >= self.max_t:
            return TrialScheduler.STOP
        value, cost = float(result[self._metric]), float(result[self.cost_attr])
        if np.isnan(value):  # an epoch the trial was not validated after (no rung is): nothing to decide on
            return TrialScheduler.CONTINUE
        tie = float(result.get(self.tie_breaker, np.nan)) if self.tie_breaker else np.nan
        for milestone in reversed(self.milestones):
            if budget >= milestone:
                recorded = self.rungs[milestone]
                if trial.trial_id in recorded:  # decided at this rung already (a retried epoch)
                    return TrialScheduler.CONTINUE
                recorded[trial.trial_id] = (value, cost, tie)
                self._version += 1
                action = self.decide(milestone, trial.trial_id)
                if self.protect_key and (getattr(trial, "config", None) or {}).get(self.protect_key):
                    action = TrialScheduler.CONTINUE
                self.decisions["continue" if action == TrialScheduler.CONTINUE else "stop"] += 1
                pause = action == TrialScheduler.STOP and self.second_chance
                if pause:
                    self.paused.add(trial.trial_id)
                self._save()
                if pause:
                    searcher = getattr(getattr(tune_controller, "search_alg", None), "searcher", None)
                    on_paused = getattr(searcher, "on_trial_paused", None)
                    if on_paused is not None:  # Ray tells searchers of no pause: this does
                        on_paused(trial.trial_id)
                    return TrialScheduler.PAUSE
                return action
        return TrialScheduler.CONTINUE

    def on_trial_add(self, tune_controller, trial) -> None:
        """A run continued with --resume: Ray requeues its paused trials as PENDING, and would start them
        all; a trial this scheduler paused stays paused until it is promoted."""
        self._load_once()
        from ray.tune.experiment import Trial

        if self.second_chance and trial.trial_id in self.paused and trial.status == Trial.PENDING:
            trial.set_status(Trial.PAUSED)

    def choose_trial_to_run(self, tune_controller):
        """A new trial (FIFO), else a paused trial that now ranks within its rung's cut; when the searcher
        is finished and nothing runs or waits, the paused trials left are stopped so the search ends."""
        if not self.second_chance:
            return super().choose_trial_to_run(tune_controller)
        from ray.tune.experiment import Trial

        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        paused = {t.trial_id: t for t in trials if t.status == Trial.PAUSED}
        searcher = getattr(tune_controller.search_alg, "searcher", None)
        if paused:
            self._load_once()
        promoted = self.promote_for_free_worker(list(paused), getattr(searcher, "budget_spent", False))
        if promoted is not None:
            return paused[promoted]
        for trial_id in self.paused_to_stop(list(paused), tune_controller.search_alg.is_finished(),
                                            any(t.status == Trial.RUNNING for t in trials)):
            compat.stop_paused_trial(tune_controller, paused[trial_id])
        return None

    # -- what a free worker runs, once no new trial waits: the search's and bench/search_efficiency.py's --------
    def promote_for_free_worker(self, paused: list[str], budget_spent: bool) -> str | None:
        """With no new trial waiting, the paused trial a free worker resumes (recorded as promoted), or None: none
        ranks within its rung's cut, or the compute budget is spent (a spent budget promotes nothing)."""
        if not paused or budget_spent:
            return None
        return self.promote(paused)

    def paused_to_stop(self, paused: list[str], search_finished: bool, running: bool) -> list[str]:
        """The paused trials to stop so the search ends: all of them once the searcher has finished and no trial
        runs (nothing left could lift one into its rung's cut); else none."""
        return list(paused) if paused and search_finished and not running else []

    def debug_string(self) -> str:
        rungs = ", ".join(f"{m}: {len(r)}" for m, r in self.rungs.items())
        return f"ParetoASHA: trials recorded per rung {{{rungs}}}, decisions {self.decisions}"

    # -- the rule --------------------------------------------------------------------------
    def decide(self, milestone: float, trial_id: str) -> str:
        """CONTINUE if `trial_id` ranks within the top ceil(n / eta) of its rung, else STOP."""
        ids = list(self.rungs[milestone])
        index = ids.index(trial_id)
        order, front_end = self._order(milestone)
        keep = math.ceil(len(ids) / self.reduction_factor)
        if order.index(index) < keep or front_end[index]:
            return TrialScheduler.CONTINUE
        return TrialScheduler.STOP

    def promote(self, paused: list[str]) -> str | None:
        """The paused trial to resume now (the first of `promotions`), recorded as promoted; None if none
        ranks within its rung's cut. What a free worker runs when no new proposal waits (the search's
        choose_trial_to_run, and bench/search_efficiency.py's simulated workers)."""
        promoted = self.promotions(paused)
        if not promoted:
            return None
        self.decisions["promote"] += 1
        self.paused.discard(promoted[0])
        self._save()
        return promoted[0]

    def promotions(self, paused: list[str]) -> list[str]:
        """Of the `paused` trial ids, those that now rank within the top ceil(n / reduction_factor) of the
        highest rung where each was recorded (ASHA's promotion rule), highest rung first, best first."""
        key = (self._version, tuple(sorted(paused)))
        if self._promotions[0] == key:
            return list(self._promotions[1])
        waiting, out = set(paused), []
        for milestone in reversed(self.milestones):
            here = waiting & set(self.rungs[milestone])
            if not here:
                continue
            waiting -= here
            order = self.order(milestone)
            keep = math.ceil(len(order) / self.reduction_factor)
            out += [t for t in order[:keep] if t in here]
        self._promotions = (key, out)
        return list(out)

    def order(self, milestone: float) -> list[str]:
        """Trial ids recorded at a rung, best first: by front, then crowding, then arrival."""
        ids = list(self.rungs[milestone])
        return [ids[i] for i in self._order(milestone)[0]]

    def _order(self, milestone: float) -> tuple[list[int], np.ndarray]:
        values = np.array([tuple(v) + (np.nan,) * (3 - len(v)) for v in self.rungs[milestone].values()], dtype=float)
        metric_loss = -values[:, 0] if self._mode == "max" else values[:, 0]
        cost = np.log10(np.maximum(values[:, 1], 1.0))
        columns = [metric_loss, cost]
        if not np.isnan(values[:, 2]).any():  # every trial here reported the tie-breaker
            columns.append(values[:, 2])
        losses = np.column_stack(columns)
        ranks = non_domination_ranks(losses)
        crowding = np.zeros(len(values))
        for front in np.unique(ranks):
            members = np.flatnonzero(ranks == front)
            crowding[members] = crowding_distance(losses[members])
        first = ranks == 0
        front_end = first & ((metric_loss == metric_loss[first].min()) | (cost == cost[first].min()))
        return sorted(range(len(values)), key=lambda i: (ranks[i], -crowding[i], i)), front_end

    # -- state that survives Tuner.restore ---------------------------------------------------
    def _save(self) -> None:
        if not self.state_path:
            return
        state = {"milestones": list(self.milestones), "paused": sorted(self.paused),
                 "rungs": {str(m): {t: list(v) for t, v in r.items()} for m, r in self.rungs.items()}}
        tmp = f"{self.state_path}.tmp"
        Path(tmp).write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def _load_once(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.state_path and not Path(self.state_path).is_file():
            self._save()  # a run holds its rungs from the start, even when none is below the full budget
        elif self.state_path:
            state = json.loads(Path(self.state_path).read_text())
            for milestone, recorded in state["rungs"].items():
                rung = self.rungs.setdefault(float(milestone) if "." in milestone else int(milestone), {})
                rung.update({t: tuple(v) for t, v in recorded.items()})
            self.paused |= set(state.get("paused", ()))  # states saved before the second chance have none
            self._version += 1
