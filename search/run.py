"""`python -m search.run`: a multi-objective sub-network search on Ray Tune.

Assembles the pieces: the model's taxonomy and search space (spaces), the task's data tokenised
once and shared through Ray's object store, the fine-tuning trainable (trainables), an Optuna
searcher on (metric max, trainable params min) and an early-stopping scheduler. At the end it
writes trials.parquet, frontier.json and pareto.png into RESULTS_DIR/NAME and prints the frontier.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search._hub)
    from search._hub import start_cli

    start_cli()

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from search._cli import build_parser, parse_args
from search._storage import RunLocation, split_uri
from spaces import (
    SpaceConfig,
    SubnetworkSpace,
    Taxonomy,
    UsageError,
    load_taxonomy,
    model_folder,
    resolve_model,
    resolve_pooling,
)

if TYPE_CHECKING:  # trainables pulls in torch: imported where a run needs it, not at CLI start
    import pandas as pd

    from trainables import Encoded, ModelFiles, Task

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEDULER_STATE_FILE = "scheduler_state.json"
OPTUNA_JOURNAL_FILE = "optuna.journal"
CONFIRM_FILE = "confirm.csv"
PREFIX_CACHE_DIR = "prefix_cache"  # frozen-prefix outputs shared by the trials (trainables._prefix)
# What runs started before an option existed did, so that they resume (and export) the same way.
LEGACY_OPTIONS = {"pooling": "cls", "lr_groups": False}


@dataclass
class Prepared:
    """Everything a run needs, checked before any run folder is created."""

    args: argparse.Namespace
    model: str
    taxonomy: Taxonomy
    space: SubnetworkSpace
    seeds: dict[str, dict]
    task: Task
    data: Encoded
    location: RunLocation  # the run folder: local, or remote storage with a local working copy
    pooling: str = "cls"  # concrete: `auto` is resolved from the model's folder
    model_files: ModelFiles | None = None  # the model's files in Ray's object store, once Ray is up

    @property
    def run_dir(self) -> Path:
        """Where the driver reads and writes the run's own files (the working copy when remote)."""
        return self.location.local


def _model_name(name: str) -> str:
    """Local folders become absolute paths (trials run in their own working directories)."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _layer_range(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    first, sep, last = text.partition("-")
    try:
        return (int(first), int(last if sep else first))
    except ValueError:
        raise UsageError(f"--layers takes FIRST-LAST or one layer, e.g. 6-11, not '{text}'") from None


def prepare(args: argparse.Namespace) -> Prepared:
    from trainables import encode, load_task, load_tokenizer

    task, splits = load_task(args.task, args.data, args.text_column, args.text_pair_column, args.label_column,
                             data_dir=args.data_dir, regression=args.regression, metric=args.metric)
    model = _model_name(args.model)
    pooling = resolve_pooling(args.pooling, resolve_model(model))
    args.pooling = pooling  # run.json records what was used
    taxonomy = load_taxonomy(model, task.num_labels, pooling)
    paper = args.study.startswith("paper-")
    if paper:  # the paper's presets need these: module types (or single layers' units), and BitFit's biases
        args.granularity = "module" if args.study == "paper-modules" else "unit"
        args.switch_values = "off,bias,all"
        if args.study_seeds < 1:
            raise UsageError("--study-seeds must be at least 1")
    space = SubnetworkSpace(taxonomy, SpaceConfig(
        granularity=args.granularity,
        values=tuple(v.strip() for v in args.switch_values.split(",")),
        modules=tuple(args.modules.split(",")) if args.modules else None,
        layers=_layer_range(args.layers),
        max_params=args.max_params,
        seeds=args.study_seeds if paper else 1,
    ))
    seeds = space.seed_points() if args.reference_points or args.study != "search" else {}
    if paper:  # every point of the study once per seed
        seeds = {f"{name}#{k}": {**seeds[name], "seed": k}
                 for name in study_points(args.study, taxonomy) if name in seeds for k in range(args.study_seeds)}
    if args.study != "search":  # a grid study of reference points: each planned one once, all to the full budget
        args.num_samples, args.scheduler = len(seeds), "none"
    if len(seeds) > args.num_samples:
        keep = ("full", "head", "layernorm", "bitfit")
        seeds = {k: v for k, v in seeds.items() if k in keep} | {k: v for k, v in seeds.items() if k not in keep}
        seeds = dict(list(seeds.items())[: args.num_samples])
    data = encode(task, splits, load_tokenizer(model), args.max_length, args.train_size, args.eval_size,
                  args.test_size)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = args.name or f"{Path(args.model).name}-{task.name}-{stamp}"
    location = RunLocation.new(args.results_dir, name, args.local_dir)
    return Prepared(args, model, taxonomy, space, seeds, task, data, location, pooling)


def study_points(study: str, taxonomy: Taxonomy) -> list[str]:
    """The reference points of a paper study, in the order its table lists them."""
    if study == "paper-modules":  # the paper's module-wise analysis
        return ["full", *taxonomy.module_types, "layernorm", "bitfit", "head"]
    return ["full", "layernorm", *(f"layernorm.{layer}" for layer in range(taxonomy.num_layers)), "head"]


def _init_ray(args: argparse.Namespace) -> None:
    import ray

    if ray.is_initialized():  # embedded use (tests, notebooks): run on the Ray already connected
        return
    local = args.address is None
    # Ray 2.60 turns token auth on by default; a private local instance does not need it.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled" if local else "token")
    # Trials get the model's files from the driver (trainables._model_files), so workers need no hub;
    # the driver's own hub setting goes with them only where the user made one.
    env_vars = {"TOKENIZERS_PARALLELISM": "false"}
    if "HF_HUB_OFFLINE" in os.environ:
        env_vars["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    runtime_env: dict = {"env_vars": env_vars}
    if not local:
        # Worker nodes may not see this machine's files: ship the project's code with the job.
        runtime_env["working_dir"] = str(PROJECT_ROOT)
        runtime_env["excludes"] = [".venv", "results", ".git", "*.egg-info", "__pycache__"]
    try:
        ray.init(
            address=args.address,
            include_dashboard=False if local else None,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    except (ConnectionError, TimeoutError) as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {args.address}: {str(exc).splitlines()[0]}") from None


def make_sampler(name: str, seed: int):
    """Optuna's sampler of that name, set for small budgets."""
    import optuna

    if name == "tpe":
        # 5 random startup trials, not Optuna's 10: a default run has 8 proposals after its reference points.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    if name == "nsga2":
        # NSGA-II samples at random for its first population: keep the population small for small budgets.
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    if name == "gp":
        # Gaussian-process BO; fits a model per proposal, worth it when trials are expensive.
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)
    return optuna.samplers.RandomSampler(seed=seed)


def publish_model(prep: Prepared) -> None:
    """Put the model's files into Ray's object store once, for every trial on every node."""
    from trainables import ModelFiles

    if prep.model_files is None:
        prep.model_files = ModelFiles.publish(prep.args.model, model_folder(prep.model))


def trial_settings(prep: Prepared):
    """What every trial of the run shares (the searched choices come in each trial's config)."""
    from trainables import TrialSettings

    args = prep.args
    publish_model(prep)
    return TrialSettings(
        model=prep.model,
        num_labels=prep.task.num_labels,
        max_epochs=args.max_epochs,
        metric=prep.task.metric,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=max(1, int(args.cpus_per_trial)),
        prefix_cache=not args.no_prefix_cache,
        cache_dir=prep.location.prefix_cache_dir(PREFIX_CACHE_DIR),
        pooling=prep.pooling,
        lr_groups=args.lr_groups,
        model_files=prep.model_files,
        fingerprint=prep.taxonomy.fingerprint,
    )


def build_trainable(prep: Prepared):
    """The trial function with the run's shared data and settings bound (data goes to the object store once).

    With `--replay TABLE`, trials replay recorded curves instead of training (benchmarks, load tests).
    """
    from ray import tune

    from search._holdout import trial_data
    from trainables import ReplayTable, finetune, replay

    args = prep.args
    resources = {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}
    if args.replay:
        table = ReplayTable.from_parquet(args.replay, prep.task.metric)
        return tune.with_resources(
            tune.with_parameters(replay, table=table, max_epochs=args.max_epochs, time_scale=args.replay_time_scale),
            resources,
        )
    settings = trial_settings(prep)
    return tune.with_resources(tune.with_parameters(finetune, data=trial_data(prep.data), settings=settings),
                               resources)


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def make_scheduler(name: str, metric: str, max_epochs: int, state_path: str | None = None):
    """The early-stopping scheduler: `pareto-asha` (the default), `asha` (on the metric alone) or `none`."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search._pareto_asha import ParetoASHA

    if name == "pareto-asha":
        return ParetoASHA(
            metric=metric, mode="max", tie_breaker="eval_loss", cost_attr="trainable_params", time_attr="epoch",
            max_t=max_epochs, grace_period=1, reduction_factor=3, protect_key="preset", state_path=state_path,
        )
    if name == "asha":
        return ASHAScheduler(metric=metric, mode="max", time_attr="epoch", max_t=max_epochs, grace_period=1,
                             reduction_factor=3)
    return FIFOScheduler()


def build_tuner(prep: Prepared, callbacks: list):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray import tune

    from search._searcher import ParetoOptunaSearch

    args, metric = prep.args, prep.task.metric
    # The searcher owns its define-by-run space and both objectives; TuneConfig names no metric,
    # or the study silently becomes single-objective.
    # The study is kept in a journal file next to the results, so optuna-dashboard can watch it live.
    journal, rungs = str(prep.run_dir / OPTUNA_JOURNAL_FILE), str(prep.run_dir / SCHEDULER_STATE_FILE)
    storage = JournalStorage(JournalFileBackend(journal))
    searcher = ParetoOptunaSearch(
        space=prep.space,
        study_name=prep.run_dir.name,
        storage=storage,
        metric=[metric, "trainable_params"],
        mode=["max", "min"],
        points_to_evaluate=list(prep.seeds.values()) or None,
        sampler=make_sampler(args.sampler, args.seed),
        max_epochs=args.max_epochs,
        # Remote storage: the journal and the rungs go up with each of Ray's experiment snapshots.
        store=prep.location if prep.location.is_remote else None,
        store_files=(OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE),
    )
    scheduler = make_scheduler(args.scheduler, metric, args.max_epochs, rungs)
    return tune.Tuner(
        build_trainable(prep),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=args.num_samples,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=prep.location.name,
            storage_path=prep.location.storage_path,
            callbacks=callbacks,
            verbose=0,
            # Every checkpoint is kept while the run lasts (the finished run keeps each trial's last).
            # Ray deletes a replaced checkpoint at once, before the experiment snapshot naming its
            # replacement has reached storage, so a killed driver's snapshot could name a deleted one;
            # kept, a resumed trial starts from exactly where the snapshot says, and retrains the
            # epochs after it to the same results (the checkpoint holds the random state).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            # A crashed trial is retried from its last checkpoint; a lost node's trials run elsewhere.
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
        ),
    )


def _interrupted(run_path: str, planned: int) -> bool:
    """True when the search ended before every planned trial did (Ctrl-C: Ray stops gracefully).

    Read from the experiment state Ray saved last, the one `--resume` would continue: the
    in-memory ResultGrid reports interrupted trials as terminated.
    """
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(run_path).trials
    return len(trials) < planned or any(t.status not in ("TERMINATED", "ERROR") for t in trials)


def report(prep: Prepared, results, elapsed: float) -> int:
    """Write the run's outputs and print the frontier; an interrupted run gets no frontier.json. Exit code."""
    from search._holdout import evaluate_holdout, test_summary, with_test_columns
    from search._pareto import reference_point
    from search._plots import pareto_plot
    from search._results import (
        FRONTIER_FILE,
        RUN_FILE,
        STUDY_FILE,
        atomic_write,
        format_study,
        frontier,
        frontier_document,
        study_table,
        trial_rows,
        write_json,
        write_trials,
    )

    metric, run_dir, location = prep.task.metric, prep.run_dir, prep.location
    frame = trial_rows(results, metric, prep.args.max_epochs, location.fs_path)
    if frame.empty:
        raise RuntimeError("no trial reported a result")
    write_trials(frame, run_dir, metric)
    if _interrupted(location.path, prep.args.num_samples):
        location.push()
        print(f"\ninterrupted after {len(results)} of {prep.args.num_samples} trials; what finished is in "
              f"{run_dir / 'trials.parquet'}\ncontinue with: python -m search.run --resume {location.quoted}")
        return 130
    location.prune_checkpoints(set(frame["checkpoint"].dropna()))  # finished: each trial's last is enough
    run = json.loads((run_dir / RUN_FILE).read_text())
    majority = prep.data.baseline(prep.task.metric)
    reference = reference_point(majority, prep.taxonomy.total_params)
    front = frontier(frame)
    # Chosen on validation; now, once, the held-out rows (none for replayed runs: nothing was trained).
    tests = None if prep.args.replay else evaluate_holdout(prep, frame, front, trial_settings(prep))
    frame = with_test_columns(frame, tests)
    write_trials(frame, run_dir, metric)
    pareto_plot(frame, run_dir / "pareto.png", metric,
                f"{prep.args.model} on {prep.task.name}: {frame['trial_id'].nunique()} trials, "
                f"{prep.args.max_epochs} epochs", majority)
    document = frontier_document(front, run, reference, frame)
    test = prep.data.test
    document["test"] = test_summary(tests, prep.task.test_split, len(test) if test is not None else 0)
    document["elapsed_seconds"] = round(elapsed, 1)
    document["trials"] = {s: int(n) for s, n in frame[frame["final"]]["status"].value_counts().items()}
    print_frontier(document, metric, frame["trial_id"].nunique(), elapsed)
    if prep.args.study.startswith("paper-"):
        table = study_table(frame, study_points(prep.args.study, prep.taxonomy), prep.taxonomy.total_params)
        atomic_write(run_dir / STUDY_FILE, lambda tmp: table.to_csv(tmp, index=False))
        print(f"\n{prep.args.study}: {metric}, mean and standard deviation over {prep.args.study_seeds} seed(s), on "
              f"validation and on the held-out test rows (with the mean of the seeds' 95% bootstrap intervals); "
              f"share = mean / mean of full fine-tuning")
        print(format_study(table, metric))
        print(f"wrote {run_dir / STUDY_FILE}")
    from search.report import build_report

    report_path = build_report(run_dir, location.quoted, frontier_document=document)
    location.push()  # everything but frontier.json, which comes last: its presence marks a finished run
    write_json(run_dir / FRONTIER_FILE, document)
    location.push((FRONTIER_FILE,))
    print(f"\nwrote {run_dir / 'trials.parquet'}\n      {run_dir / FRONTIER_FILE}\n      {run_dir / 'pareto.png'}"
          f"\n      {report_path} (and report_*.png)" + (f"\nuploaded to {location}" if location.is_remote else ""))
    print(f"export the best: python -m search.export {location.quoted} [--max-params N | --min-metric X]")
    return 0


def print_frontier(document: dict, metric: str, trials: int, elapsed: float) -> None:
    """The frontier as a table: validation (what the search chose on) beside test (scored once, after)."""
    test = document.get("test")
    print(f"\nPareto frontier ({len(document['points'])} of {trials} trials; "
          f"hypervolume {document['hypervolume']:.4f} on validation; {elapsed / 60:.1f} min):")
    rows = document["points"] + [r for r in document.get("references", []) if not r["on_frontier"]]
    header = f"{'trainable':>11} {'fraction':>9} {'val ' + metric:>13}"
    if test:
        header += f" {'test ' + metric:>14} {'95% interval':>15} {'~best':>5} {'~full':>5}"
    print(header + f" {'lr':>8}  {'trial':<10} selection")
    for p in rows:
        line = f"{p['trainable_params']:>11,} {p['fraction']:>9.3%} {p['metric']:>13.4f}"
        if test:
            if p.get("test_metric") is None:
                line += f" {'-':>14} {'':>15} {'':>5} {'':>5}"
            else:
                mark = {True: "yes", False: "no", None: "-"}
                span = f"[{p['test_low']:.3f}, {p['test_high']:.3f}]"
                line += (f" {p['test_metric']:>14.4f} {span:>15}"
                         f" {mark[p['not_worse_than_best']]:>5} {mark[p['not_worse_than_full']]:>5}")
        line += f" {p['lr']:>8.1e}  {p['trial_id']:<10} {p['selection']}"
        line += f"  [{p['preset']}]" if p["preset"] else ""
        print(line + ("" if p.get("on_frontier", True) else "  (reference, not on the frontier)"))
    if test:
        print(f"test: {test['rows']:,} held-out rows of the {test['split']} split, scored once after the search; "
              f"~best / ~full: not significantly worse than the best scored point / than full fine-tuning "
              f"(one-sided paired randomisation test, p < 0.05)")
    else:
        print("no test split: the numbers above are validation numbers the search chose on")


def confirm_trial(config: dict, data, settings) -> None:
    """Ray trainable of `--confirm-seeds`: one frontier point (`config["point"]`) at one seed."""
    from trainables import finetune

    finetune({**config["point"], "seed": config["seed"]}, data, settings)


def confirm(prep: Prepared, seeds: int) -> pd.DataFrame:
    """Train every frontier point again with `seeds` more seeds (no early stopping); a table of mean and
    standard deviation of the metric over all its seeds (the search's included), on validation and, where
    the task has a test split, on the held-out rows (each seed's last checkpoint scored once); confirm.csv."""
    import numpy as np
    import pandas as pd
    import ray
    from ray import tune
    from safetensors.torch import load_file

    from search._holdout import trial_data
    from search._results import atomic_write, frontier, read_trials
    from trainables import compute_metrics, predict_saved

    frame = read_trials(prep.run_dir)
    front = frontier(frame)
    metric, args = prep.task.metric, prep.args
    points = [json.loads(c) for c in front["config"]]
    base = args.seed
    settings = trial_settings(prep)
    trainable = tune.with_resources(
        tune.with_parameters(confirm_trial, data=trial_data(prep.data), settings=settings),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"point": tune.grid_search(points),
                     "seed": tune.grid_search([base + k for k in range(1, seeds + 1)])},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name="confirm", storage_path=prep.location.path, verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=args.max_failures)),
    )
    results = tuner.fit()
    values: dict[str, list[float]] = {t: [m] for t, m in zip(front["trial_id"], front["metric"])}
    tests: dict[str, list[float]] = {t: [] for t in front["trial_id"]}
    if "test_metric" in front:
        tests = {t: [m] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.notna(m)} | {
            t: [] for t, m in zip(front["trial_id"], front["test_metric"]) if pd.isna(m)}
    test = prep.data.test
    predict = ray.remote(predict_saved).options(num_cpus=args.cpus_per_trial, num_gpus=args.gpus_per_trial)
    pending = []
    for result in results:
        if result.error is None and result.metrics and result.metrics.get("epoch") == args.max_epochs:
            trial = front["trial_id"][points.index(result.config["point"])]
            values[trial].append(float(result.metrics[metric]))
            if test is not None and result.checkpoint is not None:
                with result.checkpoint.as_directory() as directory:
                    tensors = load_file(str(Path(directory) / "tensors.safetensors"))
                pending.append((trial, predict.remote(result.config["point"]["units"], tensors, test, settings)))
    for trial, outputs in zip([t for t, _ in pending], ray.get([f for _, f in pending])):
        tests[trial].append(compute_metrics(outputs, test.labels, prep.task.regression)[metric])

    def spread(numbers: list[float]) -> dict:
        return {"mean": float(np.mean(numbers)) if numbers else np.nan,
                "std": float(np.std(numbers, ddof=1)) if len(numbers) > 1 else (0.0 if numbers else np.nan)}

    table = pd.DataFrame([{
        "trial_id": t, "selection": s, "trainable_params": int(p), "search_metric": values[t][0],
        "seeds": len(values[t]), **spread(values[t]),
        "min": float(np.min(values[t])), "max": float(np.max(values[t])),
        "test_seeds": len(tests[t]), **{f"test_{k}": v for k, v in spread(tests[t]).items()},
    } for t, s, p in zip(front["trial_id"], front["selection"], front["trainable_params"])])
    atomic_write(prep.run_dir / CONFIRM_FILE, lambda tmp: table.to_csv(tmp, index=False))
    prep.location.push((CONFIRM_FILE,))
    print(f"\nfrontier confirmed over {seeds} more seed(s) (seeds {base}..{base + seeds}): {metric}, validation "
          f"and held-out test")
    print(f"{'trainable':>11} {'search':>8} {'mean':>8} {'std':>7} {'min':>8} {'max':>8} {'test mean':>10} "
          f"{'test std':>9}  selection")
    for r in table.to_dict("records"):
        print(f"{r['trainable_params']:>11,} {r['search_metric']:>8.4f} {r['mean']:>8.4f} {r['std']:>7.4f} "
              f"{r['min']:>8.4f} {r['max']:>8.4f} {r['test_mean']:>10.4f} {r['test_std']:>9.4f}  {r['selection']}")
    print(f"wrote {prep.run_dir / CONFIRM_FILE}")
    return table


def write_run_info(prep: Prepared) -> None:
    """run.json: what the run is (options, model, task, metric, fingerprint); written before any trial."""
    from search._results import RUN_FILE, write_json

    args = prep.args
    write_json(prep.run_dir / RUN_FILE, {
        "args": vars(args),
        "model": prep.model,
        "task": prep.task.name,
        "metric": prep.task.metric,
        "label_names": list(prep.task.label_names),
        "num_labels": prep.task.num_labels,
        "max_epochs": args.max_epochs,
        "total_params": prep.taxonomy.total_params,
        "fingerprint": prep.taxonomy.fingerprint,
        "pooling": prep.pooling,
        "granularity": args.granularity,
        "space_size": prep.space.size(),
        "reference_points": dict(prep.seeds),
        "started": datetime.now().isoformat(timespec="seconds"),
    })


def finish(prep: Prepared, results, started: float) -> int:
    """Report a search that has ended (started or resumed) and, if asked, confirm its frontier. Exit code."""
    code = report(prep, results, time.monotonic() - started)
    if code == 0 and prep.args.confirm_seeds > 0:
        confirm(prep, prep.args.confirm_seeds)
    return code


def run(args: argparse.Namespace) -> int:
    from search._progress import Progress
    from search._results import RUN_FILE

    if args.resume:
        return resume(args)
    from search._plan import check_address, check_placement

    check_address(args.address)
    prep = prepare(args)
    if args.dry_run:
        return dry_run(prep)
    location = prep.location
    if location.local.exists() or (location.is_remote and location.exists_remotely(RUN_FILE)):
        raise UsageError(f"run folder {location} exists: choose another --name, or --resume it")
    location.check_writable()
    location.local.mkdir(parents=True)
    write_run_info(prep)
    location.push((RUN_FILE,))  # a resume from remote storage starts from it
    print(f"ticketsearch: {prep.args.model} ({prep.taxonomy.total_params:,} params, {len(prep.taxonomy.units)} units) "
          f"on {prep.task.name} ({len(prep.data.train)} train / {len(prep.data.validation)} validation / "
          f"{len(prep.data.test) if prep.data.test is not None else 0} held-out test rows; {prep.pooling} pooling); "
          f"{args.granularity} granularity, {prep.space.size():,} sub-networks; {args.num_samples} trials "
          f"({len(prep.seeds)} reference points) x {args.max_epochs} epochs -> {location}"
          + (f" (working copy {location.local})" if location.is_remote else ""), flush=True)
    started = time.monotonic()
    _init_ray(args)
    check_placement(args)
    from search._pareto import reference_point

    reference = reference_point(prep.data.baseline(prep.task.metric), prep.taxonomy.total_params)
    tuner = build_tuner(prep, [Progress(prep.task.metric, args.max_epochs, args.num_samples, reference)])
    return finish(prep, tuner.fit(), started)


def saved_options(saved: dict) -> argparse.Namespace:
    """A run's options as its run.json saved them; options added since take their defaults, except those
    that change what a trial computes (LEGACY_OPTIONS), which keep what the run was started with."""
    defaults = vars(build_parser().parse_args([]))
    legacy = {k: v for k, v in LEGACY_OPTIONS.items() if k not in saved}
    return argparse.Namespace(**{**defaults, **legacy, **saved})


def dry_run(prep: Prepared) -> int:
    """Print the plan of the run (space, trials, cluster, an estimate of trial-hours) without training."""
    from search._plan import check_placement, estimate, print_plan

    _init_ray(prep.args)
    resources = check_placement(prep.args)
    import dataclasses

    settings = dataclasses.replace(trial_settings(prep), cache_dir=None)  # writes nothing into a run folder
    print_plan(prep, resources, estimate(prep, settings))
    return 0


def resume(args: argparse.Namespace) -> int:
    from ray import tune

    from search._results import RUN_FILE

    location = RunLocation.existing(args.resume, args.local_dir)
    # From remote storage: the driver's files, uploaded before each of Ray's snapshots (at least as new).
    location.pull((RUN_FILE, OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE))
    if not (location.local / RUN_FILE).is_file():
        raise UsageError(f"{location} is not a ticketsearch run folder (no {RUN_FILE})")
    saved = saved_options(json.loads((location.local / RUN_FILE).read_text())["args"])
    saved.resume, saved.address, saved.name = None, args.address, location.name
    if location.is_remote:
        saved.results_dir, saved.local_dir = split_uri(location.remote)[0], str(location.local.parent)
    else:
        saved.results_dir = str(location.local.parent)
    prep = prepare(saved)
    if not tune.Tuner.can_restore(location.path):
        raise UsageError(f"{location} has no Ray Tune experiment state to resume")
    started = time.monotonic()
    _init_ray(saved)
    restored = tune.Tuner.restore(location.path, trainable=build_trainable(prep), resume_errored=True)
    _relocate(restored, prep)
    return finish(prep, restored.fit(), started)


def _relocate(restored, prep: Prepared) -> None:
    """Point the restored searcher's journal and the scheduler's rungs at this driver's run folder.

    Ray unpickles both as the run's first driver made them, with that driver's paths; a run resumed
    from remote storage on another machine, or from a moved folder, keeps them elsewhere. Ray 2.60
    has no public way to reach them, hence the private attribute.
    """
    tune_config = getattr(getattr(restored, "_local_tuner", None), "_tune_config", None)
    if tune_config is None:  # Ray Client: the tuner lives on the cluster
        return
    searcher = getattr(tune_config.search_alg, "searcher", tune_config.search_alg)
    if hasattr(searcher, "relocate"):
        searcher.relocate(prep.run_dir)
    if hasattr(tune_config.scheduler, "state_path") and tune_config.scheduler.state_path:
        tune_config.scheduler.state_path = str(prep.run_dir / SCHEDULER_STATE_FILE)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
