"""Assemble and report searches: the public API of `search`.

    import search
    model, tokenizer = search.load_ticket("results/<run>/export/trial_<id>")   # a ticket, ready to predict

    config = search.parse_args(["--num-samples", "6"])                          # a run, step by step
    prep = search.prepare(config)                                               # (a frozen RunConfig)
    ...

`__all__` is what a library user or a benchmark (bench/) calls: loading tickets, preparing a run, the
steering pieces (sampler, scheduler, searcher), the Pareto arithmetic, the uncertainty tests and the
files a run folder holds. Names load on first use (PEP 562), so `python -m search.run` can decide the hub
mode before transformers is imported (search.driver.hub).

The code behind it lives in rooms by job, each importing only from the rooms before it:

    storage/   where a run lives: its folder's files, local or in remote storage
    settings/  the command-line options, their defaults, the frozen RunConfig
    steer/     the sampler, the searcher, Pareto-ASHA and the Pareto arithmetic
    results/   a run's trials and frontier, test-row scoring, uncertainty, figures
    ticket/    an exported ticket's PEFT adapter
    driver/    a run from its options to its report: prepare, tune, resume, finish

The rooms' modules are the project's own and may change; the tests import them where they check one room's
part. The entry points are modules of their own: `search.run`, `search.export`, `search.report`,
`search.cleanup`; `search.compat` is the one adapter to Ray's and Optuna's internals.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

from spaces._lazy import lazy_names

_EXPORTS = {
    "search.ticket.load": ("load_base", "load_ticket", "save_ticket", "trainable_ticket"),
    "search.settings.options": ("parse_args",),
    "search.settings.config": ("GRACE_PERIOD", "MIN_RUNG_STEPS", "SAMPLERS", "SCHEDULERS", "STUDIES", "RunConfig"),
    "search.driver.prepare": ("Prepared", "prepare", "write_run_info"),
    "search.driver.launch": ("launched",),
    "search.driver.tuner": ("build_tuner",),
    "search.storage.files": ("FRONTIER_FILE", "OPTUNA_JOURNAL_FILE", "REPORT_FILE", "RUN_FILE", "SCHEDULER_STATE_FILE",
                      "TRIALS_FILE"),
    "search.steer.strategies": ("first_rung", "make_sampler", "make_scheduler"),
    "search.steer.searcher": ("ParetoOptunaSearch",),
    "search.steer.tpe": ("StaticSpaceTPESampler",),
    "search.steer.journal": ("SearchJournal",),
    "search.steer.pareto_asha": ("ParetoASHA",),
    "search.steer.pareto": ("crowding_distance", "hypervolume", "hypervolume_curve", "non_domination_ranks",
                       "pareto_mask", "reference_point"),
    "search.results.table": ("frontier", "read_trials"),
    "search.results.uncertainty": ("interval", "metric_function", "not_worse", "paired_difference", "paired_test",
                            "predictions"),
    "search.storage.location": ("RunLocation",),
    "search.storage.run_info": ("RunInfo",),
}
__all__, __getattr__, __dir__ = lazy_names(__name__, _EXPORTS)

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily (below)
    from search.driver.launch import launched
    from search.driver.prepare import Prepared, prepare, write_run_info
    from search.driver.tuner import build_tuner
    from search.results.table import frontier, read_trials
    from search.results.uncertainty import (
        interval,
        metric_function,
        not_worse,
        paired_difference,
        paired_test,
        predictions,
    )
    from search.settings.config import GRACE_PERIOD, MIN_RUNG_STEPS, SAMPLERS, SCHEDULERS, STUDIES, RunConfig
    from search.settings.options import parse_args
    from search.steer.journal import SearchJournal
    from search.steer.pareto import (
        crowding_distance,
        hypervolume,
        hypervolume_curve,
        non_domination_ranks,
        pareto_mask,
        reference_point,
    )
    from search.steer.pareto_asha import ParetoASHA
    from search.steer.searcher import ParetoOptunaSearch
    from search.steer.strategies import first_rung, make_sampler, make_scheduler
    from search.steer.tpe import StaticSpaceTPESampler
    from search.storage.files import (
        FRONTIER_FILE,
        OPTUNA_JOURNAL_FILE,
        REPORT_FILE,
        RUN_FILE,
        SCHEDULER_STATE_FILE,
        TRIALS_FILE,
    )
    from search.storage.location import RunLocation
    from search.storage.run_info import RunInfo
    from search.ticket.load import load_base, load_ticket, save_ticket, trainable_ticket


# Ray pickles a run's searcher, scheduler, sampler, journal, callbacks and trial folder names by module path
# (tuner.pkl, searcher-state-*.pkl, search_gen_state-*.json). The classes it pickles say `search` as their module
# (ParetoOptunaSearch, ParetoASHA, StaticSpaceTPESampler, SearchJournal, RunLocation), so where they live can
# change; runs started before search/ had rooms name the modules of that layout, which forward to the rooms.
_MOVED = {
    "search._searcher": "search.steer.searcher",
    "search._pareto_asha": "search.steer.pareto_asha",
    "search._tpe": "search.steer.tpe",
    "search._journal": "search.steer.journal",
    "search._storage": "search.storage.location",
    "search._trials": "search.driver.trials",
    "search._progress": "search.driver.console",
}


def _forwarding(old: str, new: str) -> types.ModuleType:
    """A module named `old` whose names load from `new` on first use (never its dunders: tools that scan
    sys.modules, as `inspect` does, must not import the rooms)."""
    def forward(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(new), name)

    module = types.ModuleType(old, f"{old} moved to {new}: this forwards what runs pickled before the move name")
    module.__getattr__ = forward  # type: ignore[method-assign]
    return module


for _old, _new in _MOVED.items():
    globals()[_old.rpartition(".")[2]] = sys.modules.setdefault(_old, _forwarding(_old, _new))

