"""The one adapter to Ray's and Optuna's internals: every private name the project uses, one shim each.

Nothing else in the project reaches a private attribute or module of Ray or Optuna. Each shim says
which pinned version it serves and why no public API does the job; tests/test_compat.py exercises
every one, so a release that moves one fails there, loudly, and not in the middle of a search.
(Public, as `pandas.compat` is: the tests and benchmarks may check it.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def autoscaler_node_types() -> dict[str, str] | None:
    """node id -> node type, as the cluster's autoscaler monitor last reported it; None without a report.

    ray==2.60.0: the monitor writes its status to GCS internal KV under DEBUG_AUTOSCALING_STATUS (what
    `ray status` reads). A cluster that cannot launch nodes (`ray start` by hand, a local instance) runs
    a read-only provider whose node types are named after the node ids (`node_<id>`); an autoscaler launching from a
    config names its types (`gpu_worker`). No public API says whether an autoscaler could add nodes.
    """
    from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

    if not _internal_kv_initialized():
        return None
    status = _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
    if not status:
        return None
    report = json.loads(status).get("autoscaler_report") or {}
    return dict(report.get("node_type_mapping") or {})


# ---- Optuna ==5.0.0: non-dominated sorting and exact hypervolume --------------------------------
# Optuna has no public function for either; its samplers and plots use these. Re-implementing them
# would be a second definition of the front, so the search and the benchmarks share Optuna's.

def pareto_front_mask(losses):
    """True for each non-dominated row of `losses` (all objectives minimised); duplicates all stay."""
    from optuna.study._multi_objective import _is_pareto_front

    return _is_pareto_front(losses, assume_unique_lexsorted=False)


def non_domination_ranks(losses, n_below: int | None = None):
    """Front index of each row of `losses` (all objectives minimised): 0 for the non-dominated. With `n_below`,
    exact only for the whole fronts that hold the best `n_below` rows; every other row ranks after them."""
    from optuna.study._multi_objective import _fast_non_domination_rank

    return _fast_non_domination_rank(losses, n_below=n_below)


def hypervolume(losses, reference) -> float:
    """Exact hypervolume of `losses` (minimised, every row strictly inside `reference`)."""
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(losses, reference))


# ---- Optuna ==5.0.0: TPE's hooks for the trials it reads and how it encodes them -----------------------
# TPESampler reads a study's trials through `Study._get_trials` and encodes their parameters in
# `TPESampler._get_internal_repr`, and has no public hook for either; search.steer's sampler keeps both across
# proposals (a window of the trials, encodings computed once). `TPEHooks` gives the two under public names, and
# `relative_params` reads a running trial's parameters with TPE's relative ones (`TPESampler._get_params`).
class TPEHooks:
    """Mix in before TPESampler: it encodes the trials' parameters with `encode_params(trials, search_space,
    study)`; `relative_params(trial, study)` is a trial's parameters, TPE's relative ones included."""

    def _get_internal_repr(self, trials, search_space, study):
        return self.encode_params(trials, search_space, study)

    def encode_params(self, trials, search_space, study):
        return super()._get_internal_repr(trials, search_space, study)  # type: ignore[misc]

    def relative_params(self, trial, study) -> dict:
        return self._get_params(trial, study)  # type: ignore[attr-defined]


class _StudyView:
    def __init__(self, study, listing) -> None:
        self._study, self._listing = study, listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        # The study's own listing, once per proposal (`use_cache`: with a constant liar TPE lists the study again
        # for trials other threads started meanwhile; a search's driver proposes from one thread).
        trials = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=True)
        return self._listing(trials, self._study.directions, states)


def study_view(study, listing) -> Any:
    """`study` as a sampler reads it: its trials are `listing(trials, directions, states)` of the study's own."""
    return _StudyView(study, listing)


# ---- Optuna ==5.0.0: a journal-file study opened again at another path -------------------------
# A study unpickled on another driver keeps the first driver's journal path; JournalStorage has no
# public way to swap its backend, so the unpickling path (__getstate__/__setstate__) is replayed.
def study_journal_path(study) -> str | None:
    """The journal file behind an Optuna study, or None when it is not kept in a journal file."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = getattr(study, "_storage", None)
    backend = getattr(storage, "_backend", None)
    if isinstance(storage, JournalStorage) and isinstance(backend, JournalFileBackend):
        return backend._file_path
    return None


def reopen_journal(study, path: str) -> None:
    """Point a journal-file study at `path`: as if unpickled there, a fresh replay of that journal."""
    from optuna.storages.journal import JournalFileBackend

    storage = study._storage
    storage.__setstate__({**storage.__getstate__(), "_backend": JournalFileBackend(path)})


# ---- Ray ==2.60.0: what a restored Tuner was configured with -----------------------------------
# Tuner.restore unpickles the searcher and scheduler with the first driver's paths; Ray has no
# public accessor for them. None under Ray Client (the tuner lives on the cluster).

def restored_tune_config(tuner):
    """The TuneConfig a restored `tune.Tuner` will run with (searcher, scheduler), or None."""
    return getattr(getattr(tuner, "_local_tuner", None), "_tune_config", None)


# ---- Ray ==2.60.0: a paused trial that a scheduler stops ---------------------------------------
# TuneController.stop_trial (public, whitelisted for schedulers) sets a PAUSED trial TERMINATED, but Ray
# writes a trial's status into the experiment snapshot only when the trial is marked for it, which it
# does on its actor's events; a paused trial has no actor, so the snapshot would keep it PAUSED and a
# finished run would read as interrupted. Ray's own HyperBand has the same gap; no public API marks it.

def stop_paused_trial(tune_controller, trial) -> None:
    """Stop a PAUSED trial from a scheduler hook, and have Ray's next snapshot record it TERMINATED."""
    tune_controller.stop_trial(trial)
    controller = getattr(tune_controller, "_tune_controller", tune_controller)  # the scheduler's wrapper
    controller._mark_trial_to_checkpoint(trial)


# ---- Ray ==2.60.0: OptunaSearch's state that search.steer.searcher.ParetoOptunaSearch extends --------
# The subclass tells Optuna its trials itself (repeats, early stops as PRUNED), so it works on the
# state OptunaSearch keeps: these attribute names are its extension contract, checked by the tests.
# OptunaSearch has no public accessor for its study or its Ray-trial -> Optuna-trial map; the public
# replacement would be owning an Optuna study beside a plain Searcher (Ray's own OptunaSearch does that).
OPTUNA_SEARCH_STATE = ("_ot_study", "_ot_trials", "_completed_trials", "_metric")


@dataclass(frozen=True)
class OptunaSearchState:
    """A view of an OptunaSearch's state: the same objects, so a change through it is a change to the searcher.

    `study`: its Optuna study; `trials`: Ray trial id -> the Optuna trial it was asked as; `completed`: Ray
    trial ids Optuna has been told about; `metrics` (a copy): the result keys of the objectives, in study order."""

    study: Any
    trials: dict
    completed: set
    metrics: list


def optuna_search_state(searcher) -> OptunaSearchState:
    """The state `searcher` (a ray.tune.search.optuna.OptunaSearch) keeps, read where Ray keeps it now."""
    metrics = searcher._metric
    return OptunaSearchState(searcher._ot_study, searcher._ot_trials, searcher._completed_trials,
                             [metrics] if isinstance(metrics, str) else list(metrics))


# ---- Ray ==2.60.0: the cluster launcher's schema check ------------------------------------------
# `ray up` validates a cluster YAML against Ray's schema (ray/autoscaler/ray-schema.json) after filling
# in defaults; both steps live in ray.autoscaler._private.util, with no public entry point but `ray up`.

def validate_cluster_config(config: dict) -> dict:
    """`config` (a parsed cluster YAML) with Ray's defaults filled in, checked as `ray up` checks it
    (jsonschema.ValidationError when it is not valid)."""
    import copy

    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


# ---- Ray ==2.60.0: whether the search algorithm had finished when the experiment was last saved ----
# A search can end before --num-samples (a spent --trial-seconds budget, a sampler with nothing new):
# the searcher returns Searcher.FINISHED and Ray's SearchGenerator marks itself finished. Ray saves that
# flag beside the experiment state (`search_gen_state-<session>.json`, cloudpickled by
# ray.tune.utils.util._atomic_save), and no public API reads a saved experiment's search state back.
def search_finished(fs, run_fs_path: str) -> bool:
    """True when the newest saved search-generator state of the run at `run_fs_path` (on pyarrow filesystem `fs`:
    local, or the run's remote storage) says finished."""
    import ray.cloudpickle as cloudpickle

    path = _newest_saved(fs, run_fs_path, "search_gen_state-*.json")
    if path is None:
        return False
    with fs.open_input_stream(path) as f:
        state = cloudpickle.loads(f.readall())
    return bool(state.get("finished")) if isinstance(state, dict) else False


def _newest_saved(fs, run_fs_path: str, pattern: str) -> str | None:
    """The newest of a run's saved files named like `pattern`, as Ray picks it: the greatest name (each ends in
    its session's timestamp)."""
    import fnmatch

    import pyarrow.fs as pafs

    names = [f.base_name for f in fs.get_file_info(pafs.FileSelector(run_fs_path, allow_not_found=True))]
    matching = fnmatch.filter(names, pattern)
    return f"{run_fs_path}/{max(matching)}" if matching else None


# ---- Ray ==2.60.0: the saved search-generator state, in line with the saved experiment state ----------
# Ray saves an experiment as several files, one after the other (TuneController.checkpoint): the search
# generator's state (`search_gen_state-<session>.json`: how many trials it has created, and the experiment
# spec new trials are made from) and the trials (`experiment_state-<session>.json`). A driver killed between
# two writes leaves them out of step: a generator that counts trials the experiment state never held creates
# that many fewer on resume, and the run stops short of --num-samples at every resume. Its spec also names the
# storage the run was started in, where Ray would write the new trials of a run resumed from a moved folder
# (Ray's own restore moves the saved trials, not the spec). Ray restores both as saved; no public API edits them.
def align_search_generator(fs, run_fs_path: str, storage_fs_path: str, experiment_dir_name: str) -> int:
    """Bring the newest saved search-generator state of the run at `run_fs_path` (on pyarrow filesystem `fs`) in
    line with the newest experiment state: count only the trials that state holds, and make new trials in
    `storage_fs_path`/`experiment_dir_name`. Returns how many created trials the experiment state lacked."""
    import copy

    import ray.cloudpickle as cloudpickle

    path = _newest_saved(fs, run_fs_path, "search_gen_state-*.json")
    experiment = _newest_saved(fs, run_fs_path, "experiment_state-*.json")
    if path is None or experiment is None:
        return 0
    with fs.open_input_stream(experiment) as f:
        trials = len(json.loads(f.readall())["trial_data"])
    with fs.open_input_stream(path) as f:
        state = cloudpickle.loads(f.readall())
    lacking = max(0, state["counter"] - trials)
    storage = state["experiment"].spec.get("storage")
    moved = storage is not None and (storage.storage_fs_path, storage.experiment_dir_name) != (
        storage_fs_path, experiment_dir_name)
    if not lacking and not moved:
        return 0
    state["counter"] -= lacking
    if moved:
        storage = copy.copy(storage)
        storage.storage_fs_path, storage.experiment_dir_name = storage_fs_path, experiment_dir_name
        state["experiment"].spec["storage"] = storage
    with fs.open_output_stream(path) as f:
        f.write(cloudpickle.dumps(state))
    return lacking


# ---- Ray ==2.60.0: the trial workers' output as the driver prints it ------------------------------
# A trial worker that Ray stops (SIGTERM, at the end of a search) can be interrupted inside a weakref callback:
# Ray's sigterm_handler raises SystemExit there and Python prints "Exception ignored in: ..." with the
# traceback to the worker's stderr, which `log_to_driver` copies onto the console. The driver prints worker
# output through the handler Ray registers as "ray_print_logs" on
# ray._private.ray_logging.global_worker_stdstream_dispatcher (ray._private.worker.connect); no public API
# filters what it prints.
SIGTERM_NOISE = ("Exception ignored in", "sigterm_handler", "SystemExit")


def without_sigterm_noise(lines: list[str]) -> list[str]:
    """`lines` without the tracebacks Python prints when Ray's SIGTERM handler fires in a weakref callback:
    from an "Exception ignored in" line to its "SystemExit" line, where Ray's sigterm_handler is in between."""
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        if block is None:
            if line.startswith(SIGTERM_NOISE[0]):
                block = [line]
            else:
                out.append(line)
            continue
        block.append(line)
        if line.startswith(SIGTERM_NOISE[2]):
            if not any(SIGTERM_NOISE[1] in b for b in block):
                out.extend(block)
            block = None
    return out + (block or [])


def quiet_worker_exits() -> bool:
    """Drop those tracebacks from the worker output the driver prints; True when Ray's printer was found
    (a driver connected with log_to_driver). Other output passes unchanged."""
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    printers = [(name, handler) for name, handler in dispatcher.handlers if name == "ray_print_logs"]
    if not printers or getattr(printers[0][1], "quiet_worker_exits", False):
        return bool(printers)
    printer = printers[0][1]

    def filtered(data: dict) -> None:
        lines = without_sigterm_noise(list(data.get("lines") or []))
        if lines:
            printer({**data, "lines": lines})

    filtered.quiet_worker_exits = True  # type: ignore[attr-defined]
    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("ray_print_logs", filtered)
    return True


# ---- Ray ==2.60.0: the handler that prints Ray's log records on the console ---------------------------
# Ray's "ray" logger writes to the console through ray._private.log.PlainRayHandler (a StreamHandler subclass);
# no public API names it. A run moves Ray's records from the console to its log file (search.driver.console).
RAY_CONSOLE_HANDLER = "PlainRayHandler"


def ray_console_handlers(handlers: list) -> list:
    """Of `handlers` (the "ray" logger's), those that print to the console: Ray's own, and plain StreamHandlers."""
    import logging

    return [h for h in handlers if type(h).__name__ == RAY_CONSOLE_HANDLER or type(h) is logging.StreamHandler]

