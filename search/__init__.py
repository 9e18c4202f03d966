"""Assemble and report searches: the public API of `search`.

    import search
    args = search.parse_args(["--num-samples", "6"])
    prep = search.prepare(args)
    ...

Everything a benchmark, a notebook or a test needs is named here; the underscored modules behind it
are free to change. Names load on first use (PEP 562), so `python -m search.run` can decide the hub
mode before transformers is imported (search._hub). The entry points are modules of their own:
`search.run`, `search.export`, `search.report`; `search.compat` is the one adapter to Ray's and
Optuna's internals.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "search._cli": ("SAMPLERS", "SCHEDULERS", "STUDIES", "build_parser", "parse_args"),
    "search._files": ("CONFIRM_FILE", "FRONTIER_FILE", "HOLDOUT_FILE", "OPTUNA_JOURNAL_FILE", "PARETO_PLOT",
                      "REPORT_FILE", "RUN_FILE", "SCHEDULER_STATE_FILE", "STUDY_FILE", "TRIALS_FILE"),
    "search._prepare": ("LEGACY_OPTIONS", "Prepared", "prepare", "saved_options", "study_points",
                        "study_settings", "write_run_info"),
    "search._strategies": ("GRACE_PERIOD", "MIN_RUNG_STEPS", "first_rung", "make_sampler", "make_scheduler"),
    "search._trials": ("build_trainable", "init_ray", "trial_settings"),
    "search._tuner": ("build_tuner",),
    "search._finish": ("finish", "print_frontier"),
    "search.export": ("load_base", "load_ticket"),
    "search._searcher": ("MAX_REPEATS_IN_A_ROW", "ParetoOptunaSearch", "proposal_key"),
    "search._pareto_asha": ("ParetoASHA",),
    "search._pareto": ("crowding_distance", "hypervolume", "hypervolume_curve", "non_domination_ranks",
                       "pareto_mask", "reference_point"),
    "search._results": ("COMPLETED", "ERROR", "STOPPED", "final_rows", "frontier", "frontier_document",
                        "read_trials", "study_table", "trial_rows"),
    "search._figures": ("FIGURES", "module_transfer", "search_progress", "ticket_map", "weight_magnitudes"),
    "search._holdout": ("compare", "holdout_trials", "trial_data", "with_test_columns"),
    "search._uncertainty": ("interval", "metric_function", "not_worse", "paired_difference", "paired_test",
                            "predictions"),
    "search._storage": ("RunLocation", "join_uri", "open_uri", "split_uri"),
    "search._hub": ("CONNECT_TIMEOUT_S", "HubUnreachable", "decide_hub_mode", "hub_reachable", "start_cli"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
