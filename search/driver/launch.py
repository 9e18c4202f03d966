"""The one sequence every search runs its Tuner in (`search.run`, `--resume`, bench/ray_scale.py).

`launched(prep)`: Ray up (joining `--address`, or a private local Ray whose processes the run folder records, so
a killed driver's can be stopped), the placement checked, the environment the run needs set, and the run's log
open; the caller builds or restores its Tuner inside. What Ray Tune reads from the environment is set in
`run_environment`, and is as it was once the block ends: nothing outside needs to undo it. Two settings are the
whole process's, made before: the hub mode (HF_HUB_OFFLINE, search.driver.hub, before transformers loads) and
Ray's token authentication (RAY_AUTH_MODE, search.driver.trials.init_ray, before Ray starts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from search.driver.console import run_log
from search.driver.plan import PENDING_VARIABLE, can_add_nodes, check_placement, pending_trials
from search.driver.prepare import Prepared
from search.driver.processes import record_ray_processes
from search.driver.trials import init_ray
from search.settings.config import RunConfig
from search.storage.files import RUN_LOG


@contextmanager
def run_environment(config: RunConfig, resources: dict[str, float]) -> Iterator[int]:
    """What Ray Tune reads from the environment while a run's Tuner runs; yields the trials it may hold waiting.

    - TUNE_MAX_PENDING_TRIALS_PG: as many trials waiting for placement as the cluster runs at once
      (search.driver.plan.pending_trials), unless the user set it;
    - RAY_AIR_NEW_OUTPUT=0 without --verbose: Ray's old output engine, which prints nothing at the Tuner's
      verbose=0 (the console shows one line per finished trial and the final tables).
    """
    changes = {}
    if PENDING_VARIABLE not in os.environ:
        growth = can_add_nodes(config.address) if config.address is not None else False
        changes[PENDING_VARIABLE] = str(pending_trials(config, resources, growth))
    if not config.verbose:
        changes["RAY_AIR_NEW_OUTPUT"] = "0"
    before = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield int(os.environ[PENDING_VARIABLE])
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def launched(prep: Prepared) -> Iterator[int]:
    """Ray up, the placement checked, the run's environment set and its log open (see the module); yields the
    trials Ray Tune may hold waiting."""
    config = prep.config
    if init_ray(config, log=prep.run_dir / RUN_LOG):
        record_ray_processes(prep.run_dir)  # a killed driver's leftovers can then be stopped
    with run_environment(config, check_placement(config)) as pending, run_log(prep.run_dir, config.verbose):
        yield pending
