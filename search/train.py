"""`python -m search.train RUN_OR_EXPORT`: a ticket (or with --front, the front) trained again at your budget.

A search trains every ticket on a few rows (its proxy, `--train-size` x `--max-epochs`); the model `search.export`
writes is that rehearsal. This command trains the chosen ticket from the pre-trained model again, on all the
training rows of the run's data (or `--train-size N`) for `--epochs E`, with the run's own recipe (the trial's
learning rate and rate scale, the head's rate floor, pooling, batch size, sequence length, seed), scores it once on
the run's held-out test rows with its interval, sets it against the search's model on the same rows (paired), and
writes an export folder as complete as search.export's (spec.json, tensors, with --save-model the model folder and
the PEFT adapter where the ticket has one). Killed, it continues where it was when run again with the same options.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search.driver.hub)
    from pathlib import Path as _Path

    from search.driver.hub import saved_run_needs, start_cli

    def _run_needs(argv: list[str]) -> list[str]:
        """The hub needs of the run: named, or the one an export folder sits in (RUN/export/NAME)."""
        given = next((a for a in argv if not a.startswith("-")), None)
        if "--run" in argv[:-1]:
            return saved_run_needs([argv[argv.index("--run") + 1]])
        if given and (_Path(given) / "spec.json").is_file():
            return saved_run_needs([str(_Path(given).resolve().parent.parent)])
        return saved_run_needs(argv)

    start_cli(_run_needs)

import json
import sys
from pathlib import Path

import numpy as np

from search.driver.again import ALL_ROWS, Budget, at_budget, final_stage, scored_outputs, train_again, write_final
from search.driver.launch import launched
from search.driver.prepare import Prepared, prepare
from search.driver.trials import trial_settings
from search.export import add_pick_options, print_ticket
from search.results.holdout import score_checkpoints
from search.results.table import final_rows, read_trials
from search.results.uncertainty import CONFIDENCE, interval, paired_difference
from search.settings.config import RunConfig
from search.storage.files import EXPORT_DIR, FRONTIER_FILE, HOLDOUT_FILE, RUN_FILE
from search.storage.location import RunLocation
from search.storage.run_info import RunInfo
from search.ticket.export import Picked, pick, write_export
from spaces import SPEC_FILE, TENSORS_FILE, ArgumentParser, Spec, UsageError, run_cli


def _picked(args) -> Picked:
    """The ticket to train: a run's (chosen as search.export chooses), or an export folder's (its run found beside
    it, RUN/export/NAME, or named with --run)."""
    path = Path(args.ticket)
    if (path / SPEC_FILE).is_file():
        if any(getattr(args, option) is not None for option in ("trial", "max_params", "min_metric", "within_noise")):
            raise UsageError(f"{path} is an exported ticket: --trial, --max-params, --min-metric and --within-noise "
                             "choose from a run folder")
        spec = Spec.load(path / SPEC_FILE)
        run_dir = Path(args.run) if args.run else path.resolve().parent.parent
        if not (run_dir / RUN_FILE).is_file() or (not args.run and path.resolve().parent.name != EXPORT_DIR):
            raise UsageError(f"the run of the ticket in {path} (run {spec.source.get('run')}) is not beside it: "
                             f"name its folder with --run RUN")
        if RunInfo.read(run_dir).fingerprint != spec.model.get("fingerprint"):
            raise UsageError(f"{run_dir} is not the run of the ticket in {path} (another model)")
        return pick(run_dir, local_dir=args.local_dir, trial=spec.source["trial"])
    return pick(args.ticket, args.max_params, args.min_metric, args.local_dir, args.within_noise, args.trial)


def _run_plan(args, location) -> Prepared:
    """The finished run's own plan (its options, data and model), on this machine's Ray resources."""
    run_dir = location.local
    info = RunInfo.read(run_dir)
    here = {"results_dir": str(run_dir.parent)} if not location.is_remote else {
        "results_dir": location.storage_path, "local_dir": str(run_dir.parent)}
    resources = {name: getattr(args, name) for name in ("address", "cpus_per_trial", "gpus_per_trial")
                 if getattr(args, name) is not None}
    config = RunConfig.from_saved(info.args, resume=None, name=location.name, verbose=False, dry_run=False,
                                  confirm_seeds=0, final_train_size=None, final_epochs=None, **here, **resources)
    prep = prepare(config)
    if info.fingerprint and prep.taxonomy.fingerprint != info.fingerprint:
        raise UsageError(f"model {prep.model} is not the one run {location.name} trained (its parameters differ)")
    return prep


def train_front(args) -> int:
    """`--front`: the finished run's front and reference points trained again at the budget (its final stage)."""
    location = RunLocation.existing(args.ticket, args.local_dir)
    location.pull((RUN_FILE, FRONTIER_FILE))
    if not (location.local / FRONTIER_FILE).is_file():
        raise UsageError(f"{location} is not a finished run (no {FRONTIER_FILE})")
    prep = _run_plan(args, location)
    budget = Budget.parse(args.train_size, args.epochs, prep.config.max_epochs)
    document = json.loads((location.local / FRONTIER_FILE).read_text())
    with launched(prep):
        final_stage(prep, budget, document)
    write_final(prep, document)
    print(f"wrote {location.local / FRONTIER_FILE} (its `final`) and the report; search.export now chooses from "
          f"the final front")
    return 0


def train(args) -> Path:
    """Train the chosen ticket at the asked budget and write its export folder; returns the folder."""
    picked = _picked(args)
    location, point = picked.location, picked.point
    run_dir, trial = location.local, point["trial_id"]
    prep = _run_plan(args, location)
    config = prep.config
    budget = Budget.parse(args.train_size, args.epochs, config.max_epochs)
    final = at_budget(prep, budget)
    rows = len(final.data.train)
    trials = final_rows(read_trials(run_dir))
    config_of = dict(zip(trials["trial_id"], trials["config"]))
    if trial not in config_of:
        raise UsageError(f"run {location.name} has no trial '{trial}' in its trials.parquet")
    ticket = json.loads(config_of[trial])
    metric = prep.task.metric
    print(f"training trial {trial} ({point.get('selection') or 'head only'}; {point['trainable_params']:,} params) "
          f"on {rows:,} training rows x {budget.epochs} epochs (the search: {prep.config.train_size:,} x "
          f"{prep.config.max_epochs}), lr {ticket['lr']:.2e}, batch {config.batch_size}, seed {config.seed}; "
          f"scored on the run's {len(prep.data.test) if prep.data.test is not None else 0:,} test rows. "
          f"Stopped, it continues when run again.", flush=True)
    name = f"train-{trial}-{rows}x{budget.epochs}"
    with launched(final):
        retrained = train_again(final, {trial: ticket}, [config.seed], name)[0]
        outputs = scored_outputs(final, [retrained], {trial: ticket})
        proxy = _proxy_outputs(prep, picked, ticket) if outputs else None
    metrics: dict = {metric: retrained.metric}
    test = prep.data.test
    if outputs and test is not None:
        mine = outputs[(trial, config.seed)]
        score = interval(mine, test.labels, metric, prep.task.regression)
        metrics |= {f"test_{metric}": score.value, f"test_{metric}_interval": [score.low, score.high],
                    "test_split": prep.task.test_split, "test_rows": len(test), "test_confidence": CONFIDENCE,
                    "not_worse_than_best": None, "not_worse_than_full": None}
        if proxy is not None:
            before = interval(proxy, test.labels, metric, prep.task.regression)
            gain = paired_difference(mine, proxy, test.labels, metric, prep.task.regression)
            metrics["search_budget"] = {
                "train_size": prep.config.train_size, "epochs": prep.config.max_epochs, f"validation_{metric}":
                point["metric"], f"test_{metric}": before.value, f"test_{metric}_interval": [before.low, before.high],
                "difference": {"value": gain.value, "low": gain.low, "high": gain.high, "confidence": CONFIDENCE}}
    taxonomy = prep.taxonomy
    spec = picked.spec(taxonomy, point={**point, "metric": retrained.metric, "epoch": budget.epochs,
                                        "checkpoint": retrained.checkpoint},
                       metrics=metrics, budget=budget.as_dict(rows), trained_seconds=round(retrained.seconds, 1))
    spec.hyperparameters.update(max_epochs=budget.epochs, train_size=rows)
    out = Path(args.out) if args.out else run_dir / EXPORT_DIR / f"trial_{trial}-{rows}x{budget.epochs}"
    with_adapter = True if args.peft else (None if args.save_model else False)
    write_export(out, spec, location.fetch_folder(retrained.checkpoint) / TENSORS_FILE, taxonomy,
                 with_model=args.save_model, with_adapter=with_adapter)
    return out


def _proxy_outputs(prep, picked: Picked, ticket: dict) -> np.ndarray | None:
    """The search's model of this ticket on the test rows: as the run scored it, or scored now."""
    from safetensors.torch import load_file

    trial = picked.point["trial_id"]
    held = prep.run_dir / HOLDOUT_FILE
    if held.is_file():
        with np.load(held) as saved:
            if trial in saved.files:
                return saved[trial]
    if not picked.point.get("checkpoint"):
        return None
    tensors = load_file(str(picked.tensors()))
    return score_checkpoints({trial: (list(ticket["units"]), tensors)}, prep.data.test, trial_settings(prep),
                             prep.config)[trial]


def print_comparison(out: Path) -> None:
    spec = Spec.load(out / SPEC_FILE)
    metric = next(iter(spec.metrics))
    searched = spec.metrics.get("search_budget")
    budget = spec.source["budget"]
    test = spec.metrics.get(f"test_{metric}")
    print(f"\ntrained on {budget['train_size']:,} rows x {budget['epochs']} epochs in "
          f"{spec.source['trained_seconds'] / 60:.1f} min" + ("" if test is None else (
              f": test {metric} {test:.4f} (95% {spec.metrics[f'test_{metric}_interval'][0]:.4f}-"
              f"{spec.metrics[f'test_{metric}_interval'][1]:.4f})")))
    if searched:
        d = searched["difference"]
        verdict = "higher" if d["low"] > 0 else "lower" if d["high"] < 0 else "level within noise"
        print(f"the search's model ({searched['train_size']:,} rows x {searched['epochs']} epochs): test {metric} "
              f"{searched[f'test_{metric}']:.4f} (95% {searched[f'test_{metric}_interval'][0]:.4f}-"
              f"{searched[f'test_{metric}_interval'][1]:.4f}); trained again minus it: {d['value']:+.4f}, paired "
              f"{d['confidence']:.0%} {d['low']:+.4f} to {d['high']:+.4f} ({verdict}), on the same rows")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.train", description=__doc__.splitlines()[0],
                            epilog="Without --trial, --max-params, --min-metric or --within-noise: the ticket of the "
                            "front with the best validation metric, as search.export chooses.")
    parser.add_argument("ticket", metavar="RUN_OR_EXPORT",
                        help="a finished run's folder (or storage URI), or a folder search.export wrote")
    add_pick_options(parser)
    parser.add_argument("--front", action="store_true",
                        help="train the run's whole front and its reference points again (its final stage): "
                        "frontier.json and the report show both fronts, and search.export chooses from the final one")
    parser.add_argument("--train-size", default=ALL_ROWS, metavar="N|all",
                        help="training rows: the first N of the run's shuffled training split, or all (default)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the run's --max-epochs)")
    parser.add_argument("--out", type=Path, help="output folder (default RUN/export/trial_ID-ROWSxEPOCHS)")
    parser.add_argument("--run", help="the run folder of an exported ticket, where it is not RUN/export/NAME")
    parser.add_argument("--save-model", action="store_true",
                        help="also write the complete model folder and the PEFT adapter where the ticket has one")
    parser.add_argument("--peft", action="store_true", help="also write the PEFT adapter (an error if it has none)")
    parser.add_argument("--address", help="train on this Ray cluster (default: a local Ray)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs for the training (default: the run's)")
    parser.add_argument("--gpus-per-trial", type=float, help="GPUs for the training (default: the run's)")
    parser.add_argument("--local-dir", default="results", help="for a storage URI: where the run's files go")

    def body() -> int:
        args = parser.parse_args(argv)
        if args.front:
            if any(getattr(args, o) is not None for o in ("trial", "max_params", "min_metric", "within_noise", "out")):
                raise UsageError("--front trains the whole front and the reference points: --trial, --max-params, "
                                 "--min-metric, --within-noise and --out choose or write one ticket")
            return train_front(args)
        out = train(args)
        print_ticket(out, args.save_model)
        print_comparison(out)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
