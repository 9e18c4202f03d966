"""The plan of a run: the options checked and resolved into everything a run needs, before any folder.

`prepare(config)` loads the task and the model's taxonomy, builds the search space and its reference
points, tokenises the data and names the run folder. What the model's folder and a paper study decide
(the pooling, `study_settings`) makes the run's final configuration, a new frozen `RunConfig` the
Prepared carries; a study says what it set, and refuses a flag the user set to something else. `run.json`
(`write_run_info`) records what the run is; `search.RunInfo.read` reads it back, and `RunConfig.from_saved`
its options for `--resume`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from search.settings.config import RunConfig
from search.steer.pareto import reference_point
from search.storage.files import PREFIX_CACHE_DIR
from search.storage.location import RunLocation
from search.storage.run_info import RunInfo
from spaces import (
    LORA,
    SEARCH_REFERENCE_POINTS,
    WITHOUT_LORA,
    KappaChoice,
    SpaceConfig,
    SubnetworkSpace,
    Taxonomy,
    UsageError,
    kappa_choice,
    load_taxonomy,
    resolve_model,
    resolve_pooling,
    start_points,
)
from trainables import encode, load_task, load_tokenizer

if TYPE_CHECKING:  # trainables pulls in torch: imported where a run needs it, not at CLI start
    from trainables import Encoded, Task

@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything a run needs, checked before any run folder is created; frozen (a study's or the model's
    changes make a new one: `prepare`)."""

    config: RunConfig  # the run's final options: the pooling resolved, what a study sets applied
    model: str
    taxonomy: Taxonomy
    space: SubnetworkSpace
    initial_points: dict[str, dict]  # trained first, by name: the reference points, then spread points
    task: Task
    data: Encoded
    location: RunLocation  # the run folder: local, or remote storage with a local working copy
    study_note: str = ""  # what a paper study set, said once when the run starts
    kappa: KappaChoice | None = None  # PEFT's KappaTune choice on the model, where the run has a `lora.kappa` point

    @property
    def pooling(self) -> str:
        """What the head reads, concrete (`auto` resolved from the model's folder)."""
        return self.config.pooling

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
        return reference_point(self.data.baseline(self.task.metric), self.taxonomy.total_params)


def study_settings(config: RunConfig) -> dict[str, object]:
    """The options a paper study decides (its points need module types or single layers' units, and
    BitFit's biases); the number of trials and the scheduler follow from its points (`prepare`)."""
    if not config.study.startswith("paper-"):
        return {}
    return {"granularity": "module" if config.study == "paper-modules" else "unit",
            "switch_values": WITHOUT_LORA}


def _study_changes(config: RunConfig) -> dict[str, object]:
    """What the study decides; a flag the user set otherwise is an error, not silently replaced."""
    settings = study_settings(config)
    for option, value in settings.items():
        if option in config.given and getattr(config, option) != value:
            flag, wanted = RunConfig.flag(option), config.replace(**{option: value}).text(option)
            raise UsageError(f"--study {config.study} sets {flag} {wanted}; leave {flag} out "
                             f"(it was {config.text(option)})")
    if settings and config.study_seeds < 1:
        raise UsageError("--study-seeds must be at least 1")
    return settings


def _model_name(name: str) -> str:
    """Local folders become absolute paths (trials run in their own working directories)."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def study_points(study: str, taxonomy: Taxonomy) -> list[str]:
    """The reference points of a paper study, in the order its table lists them."""
    if study == "paper-modules":  # the paper's module-wise analysis (BitFit where the model has biases)
        return ["full", *taxonomy.module_types, "layernorm", *(["bitfit"] if taxonomy.has_biases else []), "head"]
    return ["full", "layernorm", *(f"layernorm.{layer}" for layer in range(taxonomy.num_layers)), "head"]


def load_run_task(config: RunConfig):
    """The run's task and its splits, as its options name them (`prepare`, and a retraining at another budget)."""
    return load_task(config.task, config.data, config.text_column, config.text_pair_column, config.label_column,
                     data_dir=config.data_dir, regression=config.regression, metric=config.metric)


def prepare(config: RunConfig) -> Prepared:
    """Everything a run is before Ray starts: the task's data tokenised once, the model's taxonomy, the search
    space, the reference points and where the run's files go. Writes nothing; bad input raises UsageError.
    `config` is left as it is; the Prepared carries the run's final configuration."""
    task, splits = load_run_task(config)
    model = _model_name(config.model)
    pooling = resolve_pooling(config.pooling, resolve_model(model))  # run.json records what was used
    taxonomy = load_taxonomy(model, task.num_labels, pooling)
    settings = _study_changes(config)
    config = config.replace(pooling=pooling, **settings)
    paper = bool(settings)
    values = config.switch_values
    if "lora_ranks" in config.given and LORA not in values:
        raise UsageError(f"--lora-ranks {config.text('lora_ranks')} has no effect: 'lora' is not among "
                         f"--switch-values {config.text('switch_values')} (add lora to search LoRA adapters)")
    with_points = config.reference_points or config.study != "search"
    # PEFT's KappaTune choice (a LoRA reference point): read from the pre-trained weights, so only where it is used
    kappa = kappa_choice(model, task.num_labels, pooling) if LORA in values and with_points and not paper else None
    space = SubnetworkSpace(taxonomy, SpaceConfig(
        granularity=config.granularity,
        values=values,
        explicit_values="switch_values" in config.given,  # the user's, not the default's or a study's
        lora_ranks=config.lora_ranks,
        explicit_ranks="lora_ranks" in config.given,  # the user's (the default's are left out where too large)
        modules=config.modules,
        layers=config.layers,
        max_params=config.max_params,
        seeds=config.study_seeds if paper else 1,
        kappa_units=kappa.units if kappa else None,
        lr_scale_min=config.lr_scale_range[0],
        lr_scale_max=config.lr_scale_range[1],
    ))
    points = space.seed_points() if with_points else {}
    if config.study == "search":  # the module types alone are the paper's study, not a search's start
        points = {name: point for name, point in points.items() if name in SEARCH_REFERENCE_POINTS}
    if paper:  # every point of the study once per seed
        points = {f"{name}#{k}": {**points[name], "seed": k}
                  for name in study_points(config.study, taxonomy) if name in points
                  for k in range(config.study_seeds)}
    notes = [f"{RunConfig.flag(k)} {config.text(k)}" for k in settings]
    if config.study != "search":  # a grid of reference points: each planned one once, all to the full budget
        config = config.replace(num_samples=len(points), scheduler="none")
        notes += [f"--num-samples {len(points)} (its points)", "--scheduler none"]
    points = start_points(space, points, config.spread_points if config.study == "search" else 0,
                          config.num_samples, config.seed)
    data = encode(task, splits, load_tokenizer(model), config.max_length, config.train_size, config.eval_size,
                  config.test_size)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = config.name or f"{Path(config.model).name}-{task.name}-{stamp}"
    location = RunLocation.new(config.results_dir, name, config.local_dir)
    note = f"--study {config.study} sets {', '.join(notes)}" if notes else ""
    return Prepared(config, model, taxonomy, space, points, task, data, location, study_note=note, kappa=kappa)


def write_run_info(prep: Prepared) -> None:
    """run.json: what the run is (options, model, task, metric, fingerprint); written before any trial."""
    config = prep.config
    RunInfo(args=config.as_dict(), model=prep.model, task=prep.task.name, metric=prep.task.metric,
            label_names=list(prep.task.label_names), num_labels=prep.task.num_labels, max_epochs=config.max_epochs,
            total_params=prep.taxonomy.total_params, fingerprint=prep.taxonomy.fingerprint, pooling=prep.pooling,
            granularity=config.granularity, space_size=prep.space.size(), reference_points=dict(prep.initial_points),
            started=datetime.now().isoformat(timespec="seconds")).write(prep.run_dir)
