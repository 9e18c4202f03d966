"""The Tuner of a search: the searcher, the scheduler and the trainable, with storage and retries.

The Optuna study lives in a journal file in the run folder (optuna-dashboard can watch it live);
the scheduler's rungs in another; with remote storage both go up with each of Ray's snapshots.
"""

from __future__ import annotations

from search import compat
from search.driver.prepare import Prepared
from search.driver.trials import build_trainable, trial_dirname
from search.steer.journal import SearchJournal
from search.steer.searcher import ParetoOptunaSearch
from search.steer.strategies import first_rung, make_sampler, make_scheduler
from search.storage.files import OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE
from search.storage.location import RunLocation


def build_tuner(prep: Prepared, callbacks: list):
    """The run's Ray Tune Tuner: the product's searcher (its study in a journal in the run folder) and scheduler
    (its rungs in a state file there), the bound trainable, `callbacks`, the run's storage and retries."""
    from ray import tune

    config, metric = prep.config, prep.task.metric
    # The searcher owns its define-by-run space and both objectives; a TuneConfig naming a metric
    # would make the study single-objective.
    storage = SearchJournal(str(prep.run_dir / OPTUNA_JOURNAL_FILE))
    searcher = ParetoOptunaSearch(
        space=prep.space,
        study_name=prep.run_dir.name,
        storage=storage,
        metric=[metric, "trainable_params"],
        mode=["max", "min"],
        points_to_evaluate=list(prep.initial_points.values()) or None,
        sampler=make_sampler(config.sampler, config.seed),
        max_epochs=config.max_epochs,
        fill_gaps=config.fill_gaps,
        gap_point=prep.space.gap_point,
        seed=config.seed,
        trial_seconds=config.trial_seconds,
        store=prep.location if prep.location.is_remote else None,
        store_files=(OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE),
    )
    scheduler = make_scheduler(config.scheduler, metric, config.max_epochs, str(prep.run_dir / SCHEDULER_STATE_FILE),
                               grace_period=first_rung(config.grace_period, len(prep.data.train), config.batch_size))
    return tune.Tuner(
        build_trainable(prep),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=config.num_samples,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=prep.location.name,
            storage_path=prep.location.storage_path,
            callbacks=callbacks,
            verbose=0,
            # Every checkpoint is kept while the run lasts (the finished run keeps each trial's last): Ray
            # deletes a replaced checkpoint before the snapshot naming its successor is stored.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            # A crashed trial is retried from its last checkpoint; a lost node's trials run elsewhere.
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
        ),
    )


def interrupted(location: RunLocation, planned: int) -> bool:
    """True when the search ended before every planned trial did and its searcher had more to propose
    (Ctrl-C: Ray stops gracefully).

    Read from the experiment state Ray saved last, the one `--resume` would continue: the
    in-memory ResultGrid reports interrupted trials as terminated.
    """
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(location.path).trials
    if any(t.status not in ("TERMINATED", "ERROR") for t in trials):
        return True
    # fewer trials than planned is a finished search when the searcher said it had no more to propose
    # (a spent --trial-seconds budget, a sampler with nothing new); else the driver stopped early
    return len(trials) < planned and not compat.search_finished(*location.filesystem())
