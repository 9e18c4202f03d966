"""The product's TPE sampler: Optuna's, with what it recomputes for every proposal kept, and a bounded history.

Optuna's TPE rebuilds, for every proposal, things about the finished trials that do not change once a trial has
finished, so a proposal's driver CPU grows with the trials (docs/measurements.md, "On a cluster: Ray and the
driver"):

- the relative search space: Optuna asks for the intersection of the distributions of all finished trials and
  caches it only up to the oldest unfinished one, and in a search the oldest unfinished trials stay unfinished
  for long (those running, and those Pareto-ASHA paused for a second chance). A ticketsearch space suggests
  the same parameters in every trial (spaces.SubnetworkSpace), so the intersection, once a trial has finished,
  is kept.
- each trial's parameters in TPE's internal representation (a Python loop over trials x parameters): kept per
  trial once all are set, finished or not, in a matrix a proposal reads at once. The running trials (a constant
  liar's) count: with many workers they are re-read every proposal, each through its JSON of relative
  parameters.

Both leave the proposals exactly Optuna's. What TPE itself does per proposal (split the trials by
non-domination rank, fit and score its Parzen estimators over every observation) still grows with the trials,
so beyond `history` finished trials the sampler reads a window of the study, one trial per sub-network (the
searcher answers a repeated proposal with the original's values: copies of the best sub-networks would fill
the window, and TPE, reading little else, would propose them again and again): the trials of its best
non-domination ranks (at least a tenth of `history`: TPE's "good" group, which is then the search's best
`history / 10` sub-networks, not its best tenth) and the newest up to `history` in all. Optuna's own TPE
already weighs older trials less in its "bad" group (`default_weights`); the window drops the oldest of them.
Up to `history` finished trials, proposals are exactly Optuna's. The window itself is kept up to date from the
trials that ended since the last proposal (it reads the study from the oldest trial still running on), so that
what a proposal costs stops growing with the search: what is left that grows is Optuna's storage listing the
study's trials, once a proposal (the window reads that listing; the study's storage, search.SearchJournal,
answers `Study.ask`'s listing of the waiting trials without it).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import TrialState

from search import compat

# Beyond this many finished trials the sampler reads a window of the study (above): more than the default's
# recorded searches hold, so their proposals are Optuna's (docs/measurements.md, "On a cluster: Ray and the
# driver").
HISTORY = 1000

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class StaticSpaceTPESampler(compat.TPEHooks, TPESampler):
    """TPESampler whose search space and finished trials' encodings are kept, reading at most `history` finished
    trials (the best ranks and the newest)."""

    __module__ = "search"  # pickled by Ray with each run: a path that stays where the module moves

    def __init__(self, *, history: int = HISTORY, **options: Any) -> None:
        if history < 10:
            raise ValueError(f"history must be at least 10 finished trials, not {history}")
        super().__init__(**options)
        self._kept_space: dict | None = None
        self._history = history
        self._encoded = _Encoded(0)  # trials' parameters, internal repr, in _encoded_key order
        self._encoded_key: tuple | None = None
        self._dtypes: list | None = None
        self._losses: dict[int, tuple] = {}  # trial number -> its values, all minimised (a configuration's own)
        self._first: dict[tuple, int] = {}  # configuration -> the finished trial that stands for it
        self._standing: list[int] = []  # those trials' numbers, in order
        self._known: dict[int, Any] = {}  # trial number -> the finished trial (as the study returned it)
        self._known_states: dict[TrialState, int] = {}  # how many of them finished in each state
        self._scanned = 0  # every trial numbered below this has finished and is known
        self._elite: tuple[int, frozenset] | None = None  # (completed sub-networks then, their best ranks)
        self._kept: list[int] | None = None  # the window's finished trials, until more join

    def infer_relative_search_space(self, study, trial) -> dict:
        if self._kept_space is not None:
            return dict(self._kept_space)
        space = super().infer_relative_search_space(study, trial)
        if space:  # a finished trial defined it: every later one suggests the same parameters
            self._kept_space = dict(space)
        return space

    def __getstate__(self) -> dict:
        """Pickled without what it keeps (a resumed run's searcher rebuilds it from its study)."""
        state = dict(self.__dict__)
        state.update(_encoded=None, _encoded_key=None, _dtypes=None, _losses={}, _first={}, _standing=[],
                     _known={}, _known_states={}, _scanned=0, _elite=None, _kept=None)
        return state

    # A sampler pickled by an earlier version (a resumed run's searcher) lacks the attributes added since.
    def _state(self) -> None:
        if getattr(self, "_encoded", None) is None or not hasattr(self, "_dtypes"):
            self._history = getattr(self, "_history", HISTORY)
            self._encoded, self._encoded_key, self._dtypes, self._losses = _Encoded(0), None, None, {}
        if not hasattr(self, "_known"):
            self._first, self._standing, self._known, self._known_states = {}, [], {}, {}
            self._scanned, self._elite, self._kept = 0, None, None

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        self._state()
        return super().sample_relative(compat.study_view(study, self.window), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        self._state()
        return super().sample_independent(compat.study_view(study, self.window), trial, param_name, param_distribution)

    def encode_params(self, trials, search_space, study) -> dict[str, np.ndarray]:
        """Optuna's encoding of the trials' parameters, each trial's computed once all are set (finished or
        running), kept in a matrix by trial number: a proposal reads its rows at once."""
        self._state()
        key = tuple(search_space.items())
        if key != self._encoded_key:
            self._encoded, self._encoded_key, self._dtypes = _Encoded(len(search_space)), key, None
        encoded, names = self._encoded, search_space.keys()
        numbers = np.fromiter((t.number for t in trials), dtype=np.int64, count=len(trials))
        use = np.ones(len(trials), dtype=bool)
        for i in np.flatnonzero(~encoded.has(numbers)).tolist():
            trial = trials[i]
            params, kept = trial.params, True
            if not names <= params.keys():  # a running trial part-way through, with TPE's relative parameters
                params, kept = self.relative_params(trial, study), False
                if not names <= params.keys():
                    use[i] = False
                    continue
            row = [d.to_internal_repr(params[name]) for name, d in search_space.items()]
            if self._dtypes is None:  # what np.asarray makes of each column (int for a choice's index)
                self._dtypes = [np.asarray(value).dtype for value in row]
            encoded.put(trial.number, row, kept)  # not kept: encoded again next time
        rows = encoded.rows(numbers[use] if not use.all() else numbers)
        if self._dtypes is None or not len(rows):
            return {name: np.asarray(()) for name in search_space}
        return {name: rows[:, j].astype(dtype) for j, (name, dtype) in enumerate(zip(search_space, self._dtypes))}

    def window(self, trials: list, directions, states=None) -> list:
        """The trials TPE reads, of `states` (all if None): all of them up to `history` finished; beyond, one
        finished trial per sub-network: the best non-domination ranks of the completed ones (whole ranks, at
        least a tenth of `history`, sorted out again whenever a tenth of `history` more have completed, and at
        once in a resumed run) and the newest, up to `history` in all, and the unfinished ones (running, with a
        constant liar).

        `trials` is every trial of the study, in number order (as Optuna's storages return them). Only its tail
        is read: from the oldest trial not known to have ended (the running ones, about a worker count of them),
        so a proposal does not pay for every trial of a long search."""
        self._state()
        known = self._known
        new, unfinished, ended = [], [], True
        for t in trials[bisect.bisect_left(trials, self._scanned, key=_number):]:
            state = t.state
            if state.is_finished():
                if state in _FINISHED and t.number not in known:
                    known[t.number] = t
                    self._known_states[state] = self._known_states.get(state, 0) + 1
                    new.append(t)
                if ended and t.number == self._scanned:  # it and every trial before it have ended
                    self._scanned += 1
            else:
                ended = False
                if states is None or state in states:
                    unfinished.append(t)
        if new:
            self._choose(new, directions)
            self._kept = None
        wanted = _FINISHED if states is None else tuple(s for s in _FINISHED if s in states)
        if sum(self._known_states.get(s, 0) for s in wanted) <= self._history:
            return trials if states is None else [t for t in trials if t.state in states]
        if self._kept is None:
            self._kept = self._keep()
        held = [known[n] for n in self._kept if known[n].state in wanted]
        return sorted(held + unfinished, key=_number)

    def _choose(self, finished: list, directions) -> None:
        """Newly finished trials join: one per sub-network (a repeat, answered with its original's values, adds
        nothing but weight; a completed trial stands for its configuration before a stopped one)."""
        signs = [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions]
        losses, first, standing = self._losses, self._first, self._standing
        for t in finished:
            key = tuple(sorted(t.params.items()))
            held = first.get(key)
            complete = t.state == TrialState.COMPLETE and t.values is not None
            if held is None or (complete and held not in losses):
                first[key] = t.number
                if held is not None:
                    del standing[bisect.bisect_left(standing, held)]
                bisect.insort(standing, t.number)
                if complete:
                    losses[t.number] = tuple(s * v for s, v in zip(signs, t.values))

    def _keep(self) -> list[int]:
        """The window's finished trials: the best ranks of the completed sub-networks, then the newest."""
        losses = self._losses
        # The best ranks are sorted out again once a tenth of `history` more sub-networks have completed (a sort
        # over all of them, at every result, grew with the search); those completed since are among the newest.
        elite = self._elite
        if losses and (elite is None or len(losses) - elite[0] >= max(1, self._history // 10)):
            completed = np.fromiter(losses.keys(), dtype=np.int64, count=len(losses))
            best = min(math.ceil(0.1 * self._history), len(completed))
            ranks = compat.non_domination_ranks(np.asarray(list(losses.values())), n_below=best)
            cut = np.partition(ranks, best - 1)[best - 1]  # whole ranks: TPE breaks its ties within one
            elite = self._elite = (len(losses), frozenset(completed[ranks <= cut].tolist()))
        keep = set(elite[1]) if elite is not None else set()
        for number in reversed(self._standing):
            if len(keep) >= self._history:
                break
            keep.add(number)
        return list(keep)


class _Encoded:
    """Rows of encoded parameters by trial number, and which of them are set for good."""

    def __init__(self, width: int) -> None:
        self.matrix = np.zeros((0, width))
        self.kept = np.zeros(0, dtype=bool)

    def has(self, numbers: np.ndarray) -> np.ndarray:
        inside = numbers < len(self.kept)
        out = np.zeros(len(numbers), dtype=bool)
        out[inside] = self.kept[numbers[inside]]
        return out

    def put(self, number: int, row: list, kept: bool) -> None:
        if number >= len(self.kept):
            size = max(2 * len(self.kept), number + 1, 64)
            self.matrix = np.concatenate([self.matrix, np.zeros((size - len(self.kept), self.matrix.shape[1]))])
            self.kept = np.concatenate([self.kept, np.zeros(size - len(self.kept), dtype=bool)])
        self.matrix[number] = row
        self.kept[number] = kept

    def rows(self, numbers: np.ndarray) -> np.ndarray:
        return self.matrix[numbers]

    def __bool__(self) -> bool:
        return bool(self.kept.any())


def _number(trial) -> int:
    return trial.number
