"""`--resume RUN`: a run continued where its driver stopped, with the options it was started with.

The run folder (or its storage URI) holds run.json, Ray Tune's experiment state, the Optuna journal
and the scheduler's rungs; finished trials are kept, unfinished ones restart from their last
checkpoint, and the search then finishes as a fresh one would.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from search import compat
from search.driver.finish import finish
from search.driver.launch import launched
from search.driver.prepare import Prepared, prepare
from search.driver.processes import stop_leftovers
from search.driver.trials import build_trainable
from search.settings.config import RunConfig
from search.storage.files import OPTUNA_JOURNAL_FILE, RUN_FILE, SCHEDULER_STATE_FILE
from search.storage.location import RunLocation
from search.storage.run_info import RunInfo
from spaces import UsageError, names_folder


def resume(args: RunConfig) -> int:
    from ray import tune

    assert args.resume is not None  # run.py resumes only when asked
    location = RunLocation.existing(args.resume, args.local_dir)
    if not location.is_remote and not location.local.exists():
        raise UsageError(f"--resume {args.resume}: no such folder (give the folder a run wrote, RESULTS_DIR/NAME)")
    # From remote storage: the driver's files, uploaded before each of Ray's snapshots (at least as new).
    location.pull((RUN_FILE, OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE))
    if not (location.local / RUN_FILE).is_file():
        raise UsageError(f"{location} is not a ticketsearch run folder (no {RUN_FILE})")
    here = ({"results_dir": location.storage_path, "local_dir": str(location.local.parent)}
            if location.is_remote else {"results_dir": str(location.local.parent)})
    # where this machine has the run's model and data, if the user points them (a run moved between machines)
    pointed = {name: getattr(args, name) for name in POINTABLE if name in args.given}
    info = RunInfo.read(location.local)
    # the run's own options; this driver's address, the run's folder where it is now, its console
    saved = RunConfig.from_saved(info.args, resume=None, address=args.address, name=location.name,
                                 verbose=args.verbose, dry_run=False, **here, **pointed)
    _check_inputs_here(saved, location.name)
    prep = prepare(saved)
    if info.fingerprint and prep.taxonomy.fingerprint != info.fingerprint:
        raise UsageError(f"model {prep.model} is not the one run {location.name} trained (its parameters differ): "
                         f"point --model at that model")
    if info.label_names and list(prep.task.label_names) != list(info.label_names):
        raise UsageError(f"the data's labels ({', '.join(prep.task.label_names)}) are not run {location.name}'s "
                         f"({', '.join(info.label_names)}): point --data at the run's file")
    if info.model != prep.model or pointed:  # the model and data where this machine has them: so do its outputs
        dataclasses.replace(info, model=prep.model, args=prep.config.as_dict()).write(location.local)
    if not tune.Tuner.can_restore(location.path):
        raise UsageError(f"{location} has no Ray Tune experiment state to resume")
    fs, run_fs_path = location.filesystem()
    if lacking := compat.align_search_generator(fs, run_fs_path, run_fs_path.rpartition("/")[0], location.name):
        print(f"the run's last saved state lacked {lacking} trial(s) Ray had started: as many new ones take "
              "their place")
    started = time.monotonic()
    if stopped := stop_leftovers(location.local):
        print(f"stopped {len(stopped)} Ray process(es) the run's killed driver left: {', '.join(stopped)}")
    with launched(prep):
        restored = tune.Tuner.restore(location.path, trainable=build_trainable(prep), resume_errored=True)
        _relocate(restored, prep)
        return finish(prep, restored.fit(), started)


POINTABLE = ("model", "data", "data_dir")  # what `--resume RUN` may be told is elsewhere on this machine


def _check_inputs_here(config: RunConfig, name: str) -> None:
    """One clear line where the model folder or data file the run names is not on this machine, and how to point
    to where it is."""
    for option, what, path in (("model", "model folder", config.model), ("data", "data file", config.data),
                               ("data_dir", "data folder", config.data_dir)):
        if path is None or (option == "model" and not names_folder(path)) or Path(path).expanduser().exists():
            continue
        raise UsageError(f"{what} not found: {path} (where run {name} had it); if this machine has it elsewhere, "
                         f"point to it: --resume RUN {RunConfig.flag(option)} PATH")


def _relocate(restored, prep: Prepared) -> None:
    """Point the restored searcher's journal and the scheduler's rungs at this driver's run folder.

    Ray unpickles both as the run's first driver made them, with that driver's paths (a run resumed
    on another machine, or from a moved folder, keeps them elsewhere).
    """
    tune_config = compat.restored_tune_config(restored)
    if tune_config is None:  # Ray Client: the tuner lives on the cluster
        return
    searcher = getattr(tune_config.search_alg, "searcher", tune_config.search_alg)
    if hasattr(searcher, "relocate"):
        searcher.relocate(prep.run_dir)
    if hasattr(tune_config.scheduler, "state_path") and tune_config.scheduler.state_path:
        tune_config.scheduler.state_path = str(prep.run_dir / SCHEDULER_STATE_FILE)
