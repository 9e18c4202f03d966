"""A run's configuration: every option of `python -m search.run`, built once and read-only after.

Three doors make one, and nothing else does:

- `RunConfig.from_argv(argv)`: the command line and the `--config` YAML it names (`search.settings.options`), checked;
- `RunConfig.from_saved(run_json_args)`: a run's own options as its run.json saved them, for `--resume`, with
  what runs started before an option existed did (`LEGACY_OPTIONS`), applied here and nowhere else;
- `config.replace(...)`: a new configuration from an old one (what a paper study or the model's folder
  decides: `search.driver.prepare`), the old one unchanged.

Every option's default lives in one place, the parser (`search.settings.options.build_parser`); the fields here have
none.
The trainables never see a RunConfig: they get `trainables.TrialSettings`, the part a trial needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from spaces import LEGACY_POOLING, UsageError

# trials of a run without a compute budget: its 7 reference points and 9 searched, 8 minutes on 2 CPU cores
# (docs/measurements.md, "The default run against the free answers")
NUM_SAMPLES = 16
BUDGETED_NUM_SAMPLES = 100_000  # with --trial-seconds: the budget, not a count, ends the search

# What runs started before an option existed did, so that they resume (and export) the same way.
LEGACY_OPTIONS: dict[str, Any] = {"pooling": LEGACY_POOLING, "lr_groups": False, "spread_points": 0,
                                  "fill_gaps": 0, "lr_scale_range": "0.1,10", "grace_period": 1,
                                  "eval_every_epoch": True}


def lr_scale_range(text: str) -> tuple[float, float]:
    """`--lr-scale-range LOW,HIGH` as numbers; UsageError unless 0 < LOW <= 1 <= HIGH (the size rule's rate,
    scale 1, is always in the range: the reference points train at it)."""
    try:
        low, high = (float(x) for x in str(text).split(","))
    except ValueError:
        raise UsageError(f"--lr-scale-range takes LOW,HIGH (two numbers), not '{text}'") from None
    if not 0 < low <= 1 <= high:
        raise UsageError(f"--lr-scale-range {text} must contain 1, the size rule's rate (0 < LOW <= 1 <= HIGH)")
    return low, high


def lora_ranks(text: str) -> tuple[int, ...]:
    """`--lora-ranks R,R,...` as numbers; UsageError for anything but whole numbers of at least 1 (whether a rank
    fits the model's layers is the space's to say: spaces.SubnetworkSpace)."""
    try:
        ranks = tuple(int(x) for x in str(text).split(","))
    except ValueError:
        raise UsageError(f"--lora-ranks takes whole numbers separated by commas, e.g. 4,16, not '{text}'") from None
    if min(ranks) < 1:
        raise UsageError(f"--lora-ranks: a LoRA rank must be at least 1 (got {min(ranks)})")
    return ranks


@dataclass(frozen=True)
class RunConfig:
    """Every option of a run (the flags' names, dashes as underscores), checked when built; frozen."""

    # model and data
    model: str
    task: str
    data_dir: str | None
    data: str | None
    text_column: str
    text_pair_column: str | None
    label_column: str
    regression: bool
    metric: str | None
    train_size: int
    eval_size: int
    test_size: int
    max_length: int
    pooling: str  # auto until search.driver.prepare reads the model's folder; then cls, mean or last
    # search
    granularity: str
    modules: str | None
    layers: str | None
    max_params: int | None
    switch_values: str | None  # None: the space's default values (search.settings.options.DEFAULT_SWITCH_VALUES)
    lora_ranks: str
    study: str
    study_seeds: int
    num_samples: int
    max_epochs: int
    trial_seconds: float | None
    scheduler: str
    sampler: str
    reference_points: bool
    spread_points: int
    fill_gaps: int
    lr_scale_range: str
    grace_period: int | str  # epochs, or "auto"
    batch_size: int
    lr_groups: bool
    eval_every_epoch: bool
    no_prefix_cache: bool
    replay: str | None
    replay_time_scale: float
    seed: int
    confirm_seeds: int
    # where it runs
    address: str | None
    cpus_per_trial: float
    gpus_per_trial: float
    max_failures: int
    results_dir: str
    local_dir: str
    name: str | None
    resume: str | None
    verbose: bool
    dry_run: bool
    config: str | None

    def __post_init__(self) -> None:
        for name in ("num_samples", "max_epochs", "train_size", "eval_size", "test_size", "max_length",
                     "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if self.fill_gaps < 0 or self.spread_points < 0:
            raise UsageError("--fill-gaps and --spread-points must not be negative (0: off)")
        for name in ("confirm_seeds", "max_failures"):
            if (value := getattr(self, name)) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must not be negative (got {value}; 0: none)")
        if self.trial_seconds is not None and self.trial_seconds <= 0:
            raise UsageError(f"--trial-seconds must be positive (got {self.trial_seconds:g})")
        if self.grace_period != "auto":
            if isinstance(self.grace_period, bool) or not isinstance(self.grace_period, int):
                raise UsageError(f"--grace-period takes a number of epochs or auto, not '{self.grace_period}'")
            if self.grace_period < 1:
                raise UsageError(f"--grace-period must be at least 1 epoch (got {self.grace_period})")
        lr_scale_range(self.lr_scale_range)
        lora_ranks(self.lora_ranks)
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UsageError("--cpus-per-trial must be positive and --gpus-per-trial not negative")

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RunConfig:
        """From a complete mapping of option to value (the parser's namespace): the derived defaults filled in
        (`--num-samples` from `--trial-seconds`, `--grace-period` as a number), then checked."""
        values = {name: options[name] for name in cls.fields()}
        if values["num_samples"] is None:
            values["num_samples"] = NUM_SAMPLES if values["trial_seconds"] is None else BUDGETED_NUM_SAMPLES
        grace = values["grace_period"]
        if str(grace) != "auto" and not isinstance(grace, int):
            try:
                values["grace_period"] = int(grace)
            except (TypeError, ValueError):
                raise UsageError(f"--grace-period takes a number of epochs or auto, not '{grace}'") from None
        return cls(**values)

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> RunConfig:
        """The command line (`argv`, else sys.argv) and the `--config` YAML it names; flags override the file."""
        from search.settings.options import parse_namespace  # a cycle: the parser builds RunConfigs

        return cls.from_options(vars(parse_namespace(argv)))

    @classmethod
    def defaults(cls) -> RunConfig:
        """What `python -m search.run` with no flags runs."""
        return cls.from_argv([])

    @classmethod
    def from_saved(cls, saved: dict[str, Any], **changes: Any) -> RunConfig:
        """A run's options as its run.json saved them (`run.json`'s `args`), then `changes` (where this driver
        differs: its address, the run's folder). Options added since take their defaults, except those that
        change what a trial computes (`LEGACY_OPTIONS`), which keep what the run was started with; options
        since removed are dropped."""
        from search.settings.options import parse_namespace  # a cycle: the parser builds RunConfigs

        known = set(cls.fields())
        legacy = {k: v for k, v in LEGACY_OPTIONS.items() if k not in saved}
        kept = {k: v for k, v in saved.items() if k in known}
        return cls.from_options({**vars(parse_namespace([])), **legacy, **kept, **changes})

    def replace(self, **changes: Any) -> RunConfig:
        """A new configuration with `changes` (checked as any other); this one is unchanged."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as run.json saves them (`from_saved` reads them back)."""
        return dataclasses.asdict(self)

    @property
    def lora_rank_values(self) -> tuple[int, ...]:
        return lora_ranks(self.lora_ranks)

    @property
    def lr_scales(self) -> tuple[float, float]:
        return lr_scale_range(self.lr_scale_range)
