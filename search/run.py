"""`python -m search.run`: a multi-objective sub-network search on Ray Tune.

Assembles the pieces: the run's plan (search.driver.prepare: the model's taxonomy and search space, the
task's data tokenised once), Ray and the trainable (search.driver.trials), the Tuner with an Optuna
searcher on (metric max, trainable params min) and an early-stopping scheduler (search.driver.tuner),
and the finishing step (search.driver.finish): trials.parquet, frontier.json, pareto.png and the report
in RESULTS_DIR/NAME, the frontier printed. `--resume` (search.driver.resume) and `--dry-run`
(search.driver.plan) start from the same plan.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search.driver.hub)
    from search.driver.hub import start_cli
    from search.settings.options import print_help_if_asked

    print_help_if_asked()  # --help at once, without loading Ray and torch
    start_cli()

import dataclasses
import sys
import time

from search.driver.again import Budget, at_budget, final_budget
from search.driver.console import Progress
from search.driver.finish import finish
from search.driver.launch import launched
from search.driver.plan import check_address, check_placement, estimate, first_trials, print_plan
from search.driver.prepare import Prepared, prepare, write_run_info
from search.driver.resume import resume
from search.driver.trials import init_ray, trial_settings
from search.driver.tuner import build_tuner
from search.settings.config import RunConfig
from search.settings.options import parse_args
from search.storage.files import RUN_FILE
from spaces import run_cli


def quiet_console(verbose: bool) -> None:
    """Optuna's info messages only with --verbose (Ray Tune's console output: search.driver.launch; Ray's
    warnings go to the run's log: search.driver.console)."""
    import optuna

    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(args: RunConfig) -> int:
    quiet_console(args.verbose)
    check_address(args.address)  # a cluster that is not there: one line before anything is loaded
    if args.resume:
        return resume(args)
    prep = prepare(args)
    config = prep.config  # the run's final options (what a study sets, the model's pooling)
    location = prep.location
    location.check_new()  # what a run would refuse, a dry run refuses too
    if config.dry_run:
        return dry_run(prep)
    location.check_writable()
    location.local.mkdir(parents=True)
    write_run_info(prep)
    location.push((RUN_FILE,))  # a resume from remote storage starts from it
    if prep.study_note:
        print(prep.study_note)
    data = prep.data
    print(f"ticketsearch: {config.model} ({prep.taxonomy.total_params:,} params, {len(prep.taxonomy.units)} units) "
          f"on {prep.task.name} ({len(data.train)} train / {len(data.validation)} validation / "
          f"{len(data.test) if data.test is not None else 0} held-out test rows; {prep.pooling} pooling); "
          f"{config.granularity} granularity, {prep.space.size():,} sub-networks; "
          + (f"{config.num_samples} trials" if config.trial_seconds is None else
             f"trials for {config.trial_seconds:,.0f} trial-seconds")
          + f" ({first_trials(prep)}) x {config.max_epochs} epochs -> {location}"
          + (f" (working copy {location.local})" if location.is_remote else ""), flush=True)
    started = time.monotonic()
    with launched(prep):
        tuner = build_tuner(prep, [Progress(prep.task.metric, config.max_epochs, config.num_samples, prep.reference,
                                            trial_seconds=config.trial_seconds)])
        return finish(prep, tuner.fit(), started)


def dry_run(prep: Prepared) -> int:
    """Print the plan of the run (space, trials, cluster, an estimate of trial-hours) without training."""
    init_ray(prep.config)
    resources = check_placement(prep.config)
    settings = dataclasses.replace(trial_settings(prep), cache_dir=None)  # writes nothing into a run folder
    if prep.study_note:
        print(prep.study_note)
    budget = final_budget(prep.config) or Budget(None, prep.config.max_epochs)  # none: priced at all rows
    print_plan(prep, resources, estimate(prep, settings), len(at_budget(prep, budget).data.train))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
