"""The plan of a run: the options checked and resolved into everything a run needs, before any folder.

`prepare(args)` loads the task and the model's taxonomy, builds the search space and its reference
points, tokenises the data and names the run folder. A paper study sets some options itself
(`study_settings`); it says which, and refuses a flag the user set to something else. `run.json`
(`write_run_info`) records what the run is; `saved_options` reads it back for `--resume`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from search._cli import build_parser, lr_scale_range
from search._files import PREFIX_CACHE_DIR, RUN_FILE
from search._storage import RunLocation
from spaces import (
    LEGACY_POOLING,
    SpaceConfig,
    SubnetworkSpace,
    Taxonomy,
    UsageError,
    load_taxonomy,
    resolve_model,
    resolve_pooling,
    start_points,
)

if TYPE_CHECKING:  # trainables pulls in torch: imported where a run needs it, not at CLI start
    from trainables import Encoded, ModelFiles, Task

# What runs started before an option existed did, so that they resume (and export) the same way.
LEGACY_OPTIONS = {"pooling": LEGACY_POOLING, "lr_groups": False, "spread_points": 0, "fill_gaps": 0,
                  "lr_scale_range": "0.1,10", "grace_period": 1}


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
    study_note: str = ""  # what a paper study set, said once when the run starts

    @property
    def run_dir(self) -> Path:
        """Where the driver reads and writes the run's own files (the working copy when remote)."""
        return self.location.local

    @property
    def prefix_cache(self) -> str:
        return self.location.prefix_cache_dir(PREFIX_CACHE_DIR)

    @property
    def reference(self) -> tuple[float, float]:
        """The hypervolume reference point of this run: (majority-class metric, log10 all parameters)."""
        from search._pareto import reference_point

        return reference_point(self.data.baseline(self.task.metric), self.taxonomy.total_params)


DEFAULT_SWITCH_VALUES = "off,bias,all"  # --switch-values when not given (spaces.SpaceConfig's)


def study_settings(args: argparse.Namespace) -> dict[str, object]:
    """The options a paper study decides (its points need module types or single layers' units, and
    BitFit's biases); the number of trials and the scheduler follow from its points (`prepare`)."""
    if not args.study.startswith("paper-"):
        return {}
    return {"granularity": "module" if args.study == "paper-modules" else "unit",
            "switch_values": DEFAULT_SWITCH_VALUES}


def _apply_study(args: argparse.Namespace) -> str:
    """Set what the study decides; a flag the user set otherwise is an error, not silently replaced."""
    settings = study_settings(args)
    defaults = vars(build_parser().parse_args([]))
    for option, value in settings.items():
        given = getattr(args, option)
        if given != value and given != defaults[option]:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"--study {args.study} sets {flag} {value}; leave {flag} out (it was {given})")
        setattr(args, option, value)
    if settings and args.study_seeds < 1:
        raise UsageError("--study-seeds must be at least 1")
    return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items())


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


def study_points(study: str, taxonomy: Taxonomy) -> list[str]:
    """The reference points of a paper study, in the order its table lists them."""
    if study == "paper-modules":  # the paper's module-wise analysis (BitFit where the model has biases)
        return ["full", *taxonomy.module_types, "layernorm", *(["bitfit"] if taxonomy.has_biases else []), "head"]
    return ["full", "layernorm", *(f"layernorm.{layer}" for layer in range(taxonomy.num_layers)), "head"]


def prepare(args: argparse.Namespace) -> Prepared:
    """Everything a run is before Ray starts: the task's data tokenised once, the model's taxonomy, the search
    space, the reference points and where the run's files go. Writes nothing; bad input raises UsageError."""
    from trainables import encode, load_task, load_tokenizer

    task, splits = load_task(args.task, args.data, args.text_column, args.text_pair_column, args.label_column,
                             data_dir=args.data_dir, regression=args.regression, metric=args.metric)
    model = _model_name(args.model)
    args.pooling = resolve_pooling(args.pooling, resolve_model(model))  # run.json records what was used
    taxonomy = load_taxonomy(model, task.num_labels, args.pooling)
    explicit_values = args.switch_values is not None  # the user's, not the default's or a study's
    study_note = _apply_study(args)
    paper = bool(study_note)
    space = SubnetworkSpace(taxonomy, SpaceConfig(
        granularity=args.granularity,
        values=tuple(v.strip() for v in (args.switch_values or DEFAULT_SWITCH_VALUES).split(",")),
        explicit_values=explicit_values,
        modules=tuple(args.modules.split(",")) if args.modules else None,
        layers=_layer_range(args.layers),
        max_params=args.max_params,
        seeds=args.study_seeds if paper else 1,
        **dict(zip(("lr_scale_min", "lr_scale_max"), lr_scale_range(args.lr_scale_range))),
    ))
    seeds = space.seed_points() if args.reference_points or args.study != "search" else {}
    if paper:  # every point of the study once per seed
        seeds = {f"{name}#{k}": {**seeds[name], "seed": k}
                 for name in study_points(args.study, taxonomy) if name in seeds for k in range(args.study_seeds)}
    if args.study != "search":  # a grid of reference points: each planned one once, all to the full budget
        args.num_samples, args.scheduler = len(seeds), "none"
        study_note = ", ".join(filter(None, [study_note, f"--num-samples {len(seeds)} (its points)",
                                              "--scheduler none"]))
    seeds = start_points(space, seeds, args.spread_points if args.study == "search" else 0, args.num_samples,
                         args.seed)
    data = encode(task, splits, load_tokenizer(model), args.max_length, args.train_size, args.eval_size,
                  args.test_size)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = args.name or f"{Path(args.model).name}-{task.name}-{stamp}"
    location = RunLocation.new(args.results_dir, name, args.local_dir)
    note = f"--study {args.study} sets {study_note}" if study_note else ""
    return Prepared(args, model, taxonomy, space, seeds, task, data, location, args.pooling, study_note=note)


def write_run_info(prep: Prepared) -> None:
    """run.json: what the run is (options, model, task, metric, fingerprint); written before any trial."""
    from search._results import write_json

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


def read_run_info(run_dir: str | Path) -> dict:
    """A run folder's run.json, read back the one way: with what runs written before a field existed did
    (`pooling`: cls)."""
    path = Path(run_dir) / RUN_FILE
    try:
        run = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_dir} is not a ticketsearch run folder (no {RUN_FILE})") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    run.setdefault("pooling", run.get("args", {}).get("pooling") or LEGACY_OPTIONS["pooling"])
    return run


def saved_options(saved: dict) -> argparse.Namespace:
    """A run's options as its run.json saved them; options added since take their defaults, except those
    that change what a trial computes (LEGACY_OPTIONS), which keep what the run was started with."""
    defaults = vars(build_parser().parse_args([]))
    legacy = {k: v for k, v in LEGACY_OPTIONS.items() if k not in saved}
    return argparse.Namespace(**{**defaults, **legacy, **saved})
