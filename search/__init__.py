"""Assemble and report searches: the public API of `search`.

    import search
    model, tokenizer = search.load_ticket("results/<run>/export/trial_<id>")   # a ticket, ready to predict

    config = search.parse_args(["--num-samples", "6"])                          # a run, step by step
    prep = search.prepare(config)                                               # (a frozen RunConfig)
    ...

`__all__` is what a library user or a benchmark (bench/) calls: loading tickets, preparing a run, the
steering pieces (sampler, scheduler, searcher), the Pareto arithmetic, the uncertainty tests and the
files a run folder holds. The underscored modules behind it are free to change; a few more of their
names are reachable here for the project's own tests (`_INTERNAL`), and are not API. Names load on
first use (PEP 562), so `python -m search.run` can decide the hub mode before transformers is
imported (search._hub). The entry points are modules of their own: `search.run`, `search.export`,
`search.report`; `search.compat` is the one adapter to Ray's and Optuna's internals.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "search.export": ("load_base", "load_ticket"),
    "search._cli": ("SAMPLERS", "SCHEDULERS", "STUDIES", "parse_args"),
    "search._config": ("RunConfig",),
    "search._prepare": ("Prepared", "prepare"),
    "search._files": ("FRONTIER_FILE", "OPTUNA_JOURNAL_FILE", "REPORT_FILE", "RUN_FILE", "SCHEDULER_STATE_FILE",
                      "TRIALS_FILE"),
    "search._strategies": ("GRACE_PERIOD", "MIN_RUNG_STEPS", "first_rung", "make_sampler", "make_scheduler"),
    "search._searcher": ("ParetoOptunaSearch",),
    "search._journal": ("SearchJournal",),
    "search._pareto_asha": ("ParetoASHA",),
    "search._pareto": ("crowding_distance", "hypervolume", "hypervolume_curve", "non_domination_ranks",
                       "pareto_mask", "reference_point"),
    "search._results": ("frontier", "read_trials"),
    "search._uncertainty": ("interval", "metric_function", "not_worse", "paired_difference", "paired_test",
                            "predictions"),
    "search._storage": ("RunLocation",),
}
# Reachable as `search.NAME` for the project's tests; not API (not in __all__, may change without notice).
_INTERNAL = {
    "search._cli": ("build_parser",),
    "search._files": ("CONFIRM_FILE", "HOLDOUT_FILE", "PARETO_PLOT", "RUN_LOG", "STUDY_FILE"),
    "search._config": ("LEGACY_OPTIONS",),
    "search._prepare": ("read_run_info", "study_points", "study_settings", "write_run_info"),
    "search._trials": ("REUSE_WAIT_SECONDS", "build_trainable", "init_ray", "trial_settings", "worker_env"),
    "search._tuner": ("build_tuner",),
    "search._finish": ("finish", "print_frontier"),
    "search._searcher": ("MAX_REPEATS_IN_A_ROW", "proposal_key"),
    "search._results": ("COMPLETED", "ERROR", "STOPPED", "final_rows", "frontier_document", "study_table",
                        "trial_rows"),
    "search._figures": ("FIGURES", "module_transfer", "search_progress", "ticket_map", "weight_magnitudes"),
    "search._holdout": ("compare", "holdout_trials", "trial_data", "with_test_columns"),
    "search._storage": ("join_uri", "open_uri", "split_uri"),
    "search._console": ("log_note", "run_log"),
    "search._processes": ("record_ray_processes", "stop_leftovers"),
    "search._plan": ("PENDING_WHILE_SCALING", "allow_pending", "pending_trials", "prefix_cache_note"),
    "search._hub": ("CONNECT_TIMEOUT_S", "HubUnreachable", "decide_hub_mode", "hub_reachable", "start_cli"),
}
_WHERE = {name: module for table in (_EXPORTS, _INTERNAL) for module, names in table.items() for name in names}
__all__ = [  # the names of _EXPORTS, written out so tools read them (a test keeps the two equal)
    "FRONTIER_FILE",
    "GRACE_PERIOD",
    "MIN_RUNG_STEPS",
    "OPTUNA_JOURNAL_FILE",
    "ParetoASHA",
    "ParetoOptunaSearch",
    "Prepared",
    "REPORT_FILE",
    "RUN_FILE",
    "RunConfig",
    "RunLocation",
    "SAMPLERS",
    "SCHEDULERS",
    "SCHEDULER_STATE_FILE",
    "STUDIES",
    "SearchJournal",
    "TRIALS_FILE",
    "crowding_distance",
    "first_rung",
    "frontier",
    "hypervolume",
    "hypervolume_curve",
    "interval",
    "load_base",
    "load_ticket",
    "make_sampler",
    "make_scheduler",
    "metric_function",
    "non_domination_ranks",
    "not_worse",
    "paired_difference",
    "paired_test",
    "pareto_mask",
    "parse_args",
    "predictions",
    "prepare",
    "read_trials",
    "reference_point",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily (below)
    from search._cli import SAMPLERS, SCHEDULERS, STUDIES, parse_args
    from search._config import RunConfig
    from search._files import (
        FRONTIER_FILE,
        OPTUNA_JOURNAL_FILE,
        REPORT_FILE,
        RUN_FILE,
        SCHEDULER_STATE_FILE,
        TRIALS_FILE,
    )
    from search._journal import SearchJournal
    from search._pareto import (
        crowding_distance,
        hypervolume,
        hypervolume_curve,
        non_domination_ranks,
        pareto_mask,
        reference_point,
    )
    from search._pareto_asha import ParetoASHA
    from search._prepare import Prepared, prepare
    from search._results import frontier, read_trials
    from search._searcher import ParetoOptunaSearch
    from search._storage import RunLocation
    from search._strategies import GRACE_PERIOD, MIN_RUNG_STEPS, first_rung, make_sampler, make_scheduler
    from search._uncertainty import (
        interval,
        metric_function,
        not_worse,
        paired_difference,
        paired_test,
        predictions,
    )
    from search.export import load_base, load_ticket


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
