"""The search's Optuna study storage: a journal file, whose listing of waiting trials is answered at once.

Optuna's `Study.ask` (Ray's OptunaSearch asks once a proposal, the gap filling once in `fill_gaps`) lists the
study's WAITING trials, the points enqueued to go first, and the journal finds them by reading every trial of
the study, a cost that grows with the search (docs/measurements.md, "On a cluster: Ray and the driver").
A search enqueues only a few points (the reference points, the gap fillers), through this storage: it
remembers whether any may still wait, and once a listing found none, answers the next ones without reading
the trials, until a point is enqueued again. A storage opened on a journal (a resumed run, a study unpickled or
moved) lists them for real first. The search's driver is the study's only writer: trials that another process
enqueued into the journal would reach this one's listing at its next real read only.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState


class SearchJournal(JournalStorage):
    """Optuna's JournalStorage, knowing when no trial waits."""

    __module__ = "search"  # pickled by Ray with each run: a path that stays where the module moves

    def __init__(self, path: str) -> None:
        super().__init__(JournalFileBackend(path))
        self._none_waiting: set[int] = set()  # studies whose last listing found no WAITING trial

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._none_waiting = set()  # a journal opened again: its trials are listed for real first

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None and template_trial.state == TrialState.WAITING:
            self._none_waiting.discard(study_id)
        return super().create_new_trial(study_id, template_trial)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        waiting_only = isinstance(states, (tuple, list)) and list(states) == [TrialState.WAITING]
        if waiting_only and study_id in self._none_waiting:
            return []
        trials = super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        if waiting_only and not trials:
            self._none_waiting.add(study_id)
        return trials
