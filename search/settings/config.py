"""A run's configuration: every option of `python -m search.run` as one typed field, built once and read-only after.

Each field of `RunConfig` is one option: its type, its default and its help text, in one place (as PEFT's
`LoraConfig` fields carry theirs). The command line's parser (`search.settings.options`), `--help`, the option
reference (`docs/options.md`) and the defaults a resumed run takes are all made from these fields.

Three doors make a RunConfig, and nothing else does:

- `search.settings.options.parse_args(argv)`: the command line and the `--config` YAML it names;
- `RunConfig.from_saved(run_json_args)`: a run's own options as its run.json saved them, for `--resume`, with
  what runs started before an option existed did (`LEGACY_OPTIONS`), applied here and nowhere else;
- `config.replace(...)`: a new configuration from an old one (what a paper study or the model's folder
  decides: `search.driver.prepare`), the old one unchanged.

Values are parsed once, into the types the code uses (`lora_ranks` a tuple of ints, `layers` a pair), whether they
come as flags, YAML or a run.json. `given` holds the options the user set (on the command line or in the YAML):
the one answer to "did the user choose this, or is it the default?".
The trainables never see a RunConfig: they get `trainables.TrialSettings`, the part a trial needs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spaces import DEFAULT_MODEL, GRANULARITIES, LEGACY_POOLING, POOLINGS, SpaceConfig, UsageError
from trainables import GLUE

# trials of a run without a compute budget: by default its 4 reference points, 1 spread over sizes and 11 searched
# (with LoRA offered: 7 reference points, 9 searched), within 10 minutes on 2 CPU cores with the install
# (docs/measurements.md, "LoRA in the default space, on three tasks")
NUM_SAMPLES = 16
BUDGETED_NUM_SAMPLES = 100_000  # with --trial-seconds: the budget, not a count, ends the search
SCHEDULERS = ("pareto-asha", "asha", "none")
SAMPLERS = ("tpe", "nsga2", "random", "gp")
STUDIES = ("search", "presets", "paper-modules", "paper-layers")
# Early stopping's first rung (--grace-period): `auto` puts it after MIN_RUNG_STEPS optimizer steps, the fewest
# that stopped few of the trainings that end on a recorded table's front (docs/measurements.md, "The learning
# rate and the first rung").
GRACE_PERIOD = "auto"
MIN_RUNG_STEPS = 64
GROUPS = ("model and data", "search", "where it runs")

# What runs started before an option existed did, so that they resume (and export) the same way.
LEGACY_OPTIONS: dict[str, Any] = {"pooling": LEGACY_POOLING, "lr_groups": False, "spread_points": 0,
                                  "fill_gaps": 0, "lr_scale_range": (0.1, 10.0), "grace_period": 1,
                                  "eval_every_epoch": True}


def _items(value: Any, flag: str) -> list[str]:
    """A list option's items: `a,b` from a flag or YAML string, or a YAML/JSON list."""
    if isinstance(value, (list, tuple)):
        return [str(x).strip() for x in value]
    items = [x.strip() for x in str(value).split(",")]
    if not all(items):
        raise UsageError(f"{flag} takes values separated by commas, not '{value}'")
    return items


def names(flag: str) -> Callable[[Any], tuple[str, ...]]:
    return lambda value: tuple(_items(value, flag))


def lora_ranks(value: Any) -> tuple[int, ...]:
    """`--lora-ranks R,R,...` as numbers; UsageError for anything but whole numbers of at least 1 (whether a rank
    fits the model's layers is the space's to say: spaces.SubnetworkSpace)."""
    try:
        ranks = tuple(int(x) for x in _items(value, "--lora-ranks"))
    except ValueError:
        raise UsageError(f"--lora-ranks takes whole numbers separated by commas, e.g. 4,16, not '{value}'") from None
    if min(ranks) < 1:
        raise UsageError(f"--lora-ranks: a LoRA rank must be at least 1 (got {min(ranks)})")
    return ranks


def lr_scale_range(value: Any) -> tuple[float, float]:
    """`--lr-scale-range LOW,HIGH` as numbers; UsageError unless 0 < LOW <= 1 <= HIGH (the size rule's rate,
    scale 1, is always in the range: the reference points train at it)."""
    try:
        low, high = (float(x) for x in _items(value, "--lr-scale-range"))
    except ValueError:
        raise UsageError(f"--lr-scale-range takes LOW,HIGH (two numbers), not '{value}'") from None
    if not 0 < low <= 1 <= high:
        raise UsageError(f"--lr-scale-range {flag_text(value)} must contain 1, the size rule's rate "
                         "(0 < LOW <= 1 <= HIGH)")
    return low, high


def layer_range(value: Any) -> tuple[int, int]:
    """`--layers FIRST-LAST` (or one layer) as a pair of layer numbers, counted from 0."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, last = value
    else:
        first, sep, last = str(value).partition("-")
        last = last if sep else first
    try:
        return int(first), int(last)
    except ValueError:
        raise UsageError(f"--layers takes FIRST-LAST or one layer, e.g. 6-11, not '{value}'") from None


def grace_period(value: Any) -> int | str:
    if str(value) == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"--grace-period takes a number of epochs or auto, not '{value}'")
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--grace-period takes a number of epochs or auto, not '{value}'") from None


def _number(kind: type, flag: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return kind(value)
        except (TypeError, ValueError):
            what = "a whole number" if kind is int else "a number"
            raise UsageError(f"{flag} takes {what}, not '{value}'") from None
    return parse


def _rows_or_all(flag: str) -> Callable[[Any], Any]:
    """A number of rows (at least 1), or `all`."""
    def parse(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "all":
            return "all"
        try:
            rows = _number(int, flag)(value)
        except UsageError:
            rows = 0
        if rows < 1:
            raise UsageError(f"{flag} takes a number of rows (at least 1) or 'all', not '{value}'")
        return rows
    return parse


def flag_text(value: Any) -> str:
    """A value as the command line writes it (`2,8,32`, `6-11`, `0.5,2`)."""
    if isinstance(value, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in value)
    return str(value)


def option(default: Any, help: str, *, group: str, kind: str = "value", parse: Callable[[Any], Any] | None = None,
           choices: tuple[str, ...] | None = None, metavar: str | None = None, shown: str | None = None,
           flag: str | None = None, default_factory: Callable[[], Any] | None = None) -> Any:
    """One option: its default, help and how the command line gives it. `kind`: value (FLAG VALUE), switch
    (FLAG sets True), off-switch (FLAG sets False), toggle (--FLAG / --no-FLAG). `parse` turns what a flag,
    YAML or run.json gives into the field's type. `shown`: the default as help writes it, where the value alone
    does not say it (None: the value; "": no default shown). `flag`: where the flag is not the field's name."""
    metadata = {"help": help, "group": group, "kind": kind, "parse": parse, "choices": choices, "metavar": metavar,
                "shown": shown, "flag": flag}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


MODEL, SEARCH, WHERE = GROUPS
_SPACE = SpaceConfig()


@dataclass(frozen=True)
class RunConfig:
    """Every option of a run (the flags' names, dashes as underscores), typed, checked when built; frozen."""

    # model and data
    model: str = option(DEFAULT_MODEL, "alias (minilm), local HF folder, or hub id", group=MODEL)
    task: str = option("rotten_tomatoes", f"rotten_tomatoes (built in, offline), a GLUE task ({', '.join(GLUE)}: "
                       "from --data-dir, else the hub), or a name for --data", group=MODEL)
    data_dir: str | None = option(None, "folder with a GLUE task's train and validation files (Parquet, CSV, TSV "
                                  "or JSON Lines with the hub's columns), or one subfolder per task", group=MODEL)
    data: str | None = option(None, "local CSV, TSV, JSON Lines or Parquet file instead of a built-in task (10%% "
                              "of its rows held out for test, 10%% for validation)", group=MODEL)
    text_column: str = option("text", "--data's column of texts", group=MODEL)
    text_pair_column: str | None = option(None, "--data's column of second texts, for pair tasks", group=MODEL)
    label_column: str = option("label", "--data's column of labels", group=MODEL)
    regression: bool = option(False, "--data labels are numbers to predict (MSE loss)", group=MODEL, kind="switch",
                             shown="")
    metric: str | None = option(None, "metric to optimise instead of the task's standard one: accuracy, f1, "
                                "matthews_correlation (classification), pearson, spearman (regression)", group=MODEL)
    # 512 training rows keep the default run within 10 minutes on 2 CPU cores (docs/measurements.md, "The default
    # run against the free answers"); 1,024 validation rows, not 256, are what let the search's choices hold up
    # on test rows (docs/measurements.md, "Rotten Tomatoes with four times the validation rows")
    train_size: int = option(512, "training rows used", group=MODEL, parse=_number(int, "--train-size"))
    eval_size: int = option(1024, "validation rows the search chooses on (or as many as the split has; with 256, "
                            "one standard error of accuracy is about 3 points, and the search's choices among "
                            "neighbouring sub-networks did not hold up on test rows)", group=MODEL,
                            parse=_number(int, "--eval-size"))
    test_size: int = option(768, "held-out test rows scored once at the end (768: +-3 points of accuracy at 95%%; "
                            "more rows, tighter intervals)", group=MODEL, parse=_number(int, "--test-size"))
    max_length: int = option(64, "tokens per text", group=MODEL, parse=_number(int, "--max-length"))
    pooling: str = option("auto", "what the classification head reads: cls (the architecture's own head: first "
                          "token, through its pooler), mean (mean of the last layer's tokens), last (the last "
                          "token: decoders); auto reads a sentence-transformers folder's pooling config, else the "
                          "family's own", group=MODEL, choices=POOLINGS)
    # search
    granularity: str = option("module", "what one switch of the search covers: module (a module type in every "
                              "layer), layer (a whole layer), unit (one module type in one layer)", group=SEARCH,
                              choices=GRANULARITIES)
    modules: tuple[str, ...] | None = option(None, "comma-separated module types / non-layer units that may be "
                                             "trained (default all)", group=SEARCH, parse=names("--modules"),
                                             metavar="NAME,NAME,...", shown="")
    layers: tuple[int, int] | None = option(None, "layers that may be trained, FIRST-LAST or one layer, counted "
                                            "from 0 (default all)", group=SEARCH, parse=layer_range,
                                            metavar="FIRST-LAST", shown="")
    max_params: int | None = option(None, "never train a sub-network with more trainable parameters (head "
                                    "included)", group=SEARCH, parse=_number(int, "--max-params"))
    switch_values: tuple[str, ...] = option(
        _SPACE.values, "what a switch may be: off, bias (BitFit), weight, all, lora (a LoRA adapter on the "
        "switch's linear layers, one value per rank of --lora-ranks, and PEFT's LoRA answers as reference points: "
        "off,bias,all,lora); a switch whose modules have no biases offers no bias, one without a linear layer no "
        "lora", group=SEARCH, parse=names("--switch-values"), metavar="VALUE,VALUE,...")
    lora_ranks: tuple[int, ...] = option(
        _SPACE.lora_ranks, "with lora among --switch-values: the ranks a switch's adapter may have, each a value "
        "of its own (the default's are each left out of a switch whose layers they do not fit; ranks you name must "
        "fit every searched layer; the LoRA reference points take the one nearest 8)", group=SEARCH,
        parse=lora_ranks, metavar="R,R,...")
    study: str = option("search", "search; presets: train exactly the reference points, no early stopping; "
                        "paper-modules: the paper's module-wise study (each module type alone, full, head, BitFit, "
                        "all LayerNorms) over --study-seeds seeds; paper-layers: the LayerNorms of each single "
                        "layer", group=SEARCH, choices=STUDIES)
    study_seeds: int = option(3, "seeds per point of a paper study", group=SEARCH,
                              parse=_number(int, "--study-seeds"))
    num_samples: int = option(None, "trials, reference points included", group=SEARCH,
                                     parse=_number(int, "--num-samples"),
                                     shown=f"{NUM_SAMPLES}; with --trial-seconds, {BUDGETED_NUM_SAMPLES:,}: the "
                                     "budget ends the search")
    max_epochs: int = option(3, "full budget of a trial, in epochs", group=SEARCH, parse=_number(int, "--max-epochs"))
    trial_seconds: float | None = option(None, "a compute budget: once the trials have trained this many seconds "
                                         "in all (each epoch's seconds, summed over trials), no trial starts and "
                                         "none is promoted; running ones finish (--num-samples, if given, still "
                                         "caps the trials)", group=SEARCH, parse=_number(float, "--trial-seconds"),
                                         metavar="SECONDS", shown="none")
    scheduler: str = option("pareto-asha", "early stopping: pareto-asha (ranks on metric and trainable params), "
                            "asha (metric only), none; it stops trials only where its first rung (--grace-period) "
                            "comes before --max-epochs, and the plan says when it does not", group=SEARCH,
                            choices=SCHEDULERS)
    sampler: str = option("tpe", "Optuna's sampler: tpe (multivariate TPE), nsga2, random, or gp (a Gaussian "
                          "process, whose proposals cost driver CPU that grows with the trials)", group=SEARCH,
                          choices=SAMPLERS)
    reference_points: bool = option(True, "do not start the search from the reference points (full, head, "
                                    "layernorm, beft; with lora: lora.qv, lora.kappa, lora.all-linear)", group=SEARCH,
                                    kind="off-switch", flag="--no-reference-points", shown="")
    spread_points: int = option(5, "the first proposals, where fewer reference points are given: this many "
                                "sub-networks spread over parameter budgets, cheapest and largest first (0: the "
                                "sampler's own)", group=SEARCH, parse=_number(int, "--spread-points"))
    fill_gaps: int = option(4, "every K-th proposal fills the widest gap (in parameters) of the front found so far "
                            "with a random sub-network of a size inside it (0: off)", group=SEARCH,
                            parse=_number(int, "--fill-gaps"), metavar="K")
    lr_scale_range: tuple[float, float] = option(
        (_SPACE.lr_scale_min, _SPACE.lr_scale_max), "each proposal's learning rate is the size rule's "
        "(spaces.reference_lr) times a scale the sampler draws log-uniformly from LOW..HIGH, which must contain 1 "
        "(1,1: the size rule alone)", group=SEARCH, parse=lr_scale_range, metavar="LOW,HIGH")
    grace_period: int | str = option(GRACE_PERIOD, "early stopping's first decision comes after this many epochs "
                                     "(ASHA's grace period; rungs at GRACE x 3^k below --max-epochs; --max-epochs "
                                     f"or more: none); auto: after the fewest epochs that hold {MIN_RUNG_STEPS} "
                                     "optimizer steps (at 512 rows in batches of 32, 4 epochs)", group=SEARCH,
                                     parse=grace_period, metavar="EPOCHS|auto")
    batch_size: int = option(32, "training rows per optimizer step", group=SEARCH, parse=_number(int, "--batch-size"))
    lr_groups: bool = option(True, "train the new classification head at no less than 5e-3 x the trial's lr scale, "
                             "the pre-trained parameters at the trial's lr (--no-lr-groups: one rate for all)",
                             group=SEARCH, kind="toggle", shown="on")
    eval_every_epoch: bool = option(False, "validate every trial after every epoch (learning curves in the report); "
                                    "otherwise only after the epochs early stopping decides on and the last, since "
                                    "validating --eval-size rows costs about as much as a training epoch",
                                    group=SEARCH, kind="toggle", shown="off")
    no_prefix_cache: bool = option(False, "run the frozen layers below the trained ones every step (otherwise their "
                                   "outputs are computed once, in eval mode, and shared by the trials)", group=SEARCH,
                                   kind="switch", shown="")
    replay: str | None = option(None, "Parquet table of recorded curves: trials replay them instead of training",
                                group=SEARCH, metavar="TABLE")
    replay_time_scale: float = option(0.0, "with --replay, sleep this fraction of each recorded epoch's seconds",
                                      group=SEARCH, parse=_number(float, "--replay-time-scale"))
    seed: int = option(0, "the search's seed: the sampler's, the gap fills' and each trial's training seed",
                       group=SEARCH, parse=_number(int, "--seed"))
    confirm_seeds: int = option(0, "after the search, train each frontier point again with K more seeds and report "
                                "the mean and spread of its metric (confirm.csv)", group=SEARCH,
                                parse=_number(int, "--confirm-seeds"), metavar="K")
    final_train_size: int | str | None = option(
        None, "after the search, train the front's tickets and the reference points again on this many training "
        "rows (all: every row of the training split), score them on the test rows and write that front beside the "
        "search's (frontier.json's `final`; search.export then chooses from it)", group=SEARCH,
        parse=_rows_or_all("--final-train-size"), metavar="N|all", shown="no final stage (it costs minutes to hours "
        "on a CPU: python -m search.train RUN --front adds it to a finished run)")
    final_epochs: int | None = option(None, "epochs of the final stage", group=SEARCH,
                                      parse=_number(int, "--final-epochs"), shown="--max-epochs")
    # where it runs
    address: str | None = option(None, "Ray cluster address ('auto' on a cluster's head)", group=WHERE,
                                 shown="a Ray instance of this machine")
    cpus_per_trial: float = option(1.0, "CPUs each trial reserves", group=WHERE,
                                   parse=_number(float, "--cpus-per-trial"))
    gpus_per_trial: float = option(0.0, "GPUs (or a fraction of one) each trial reserves", group=WHERE,
                                   parse=_number(float, "--gpus-per-trial"))
    max_failures: int = option(2, "retries of a crashed trial, from its last checkpoint", group=WHERE,
                               parse=_number(int, "--max-failures"))
    results_dir: str = option(None, "folder, or storage URI (s3://BUCKET/PREFIX, gs://...; MinIO and other "
                              "S3-compatible stores with ?endpoint_override=HOST:PORT&scheme=http), that holds the "
                              "runs", group=WHERE, shown="$TICKETSEARCH_RESULTS_DIR, else results",
                              default_factory=lambda: os.environ.get("TICKETSEARCH_RESULTS_DIR", "results"))
    local_dir: str = option("results", "with a storage URI: where the driver keeps its working copy of the run",
                            group=WHERE)
    name: str | None = option(None, "run name", group=WHERE, shown="MODEL-TASK-TIME")
    resume: str | None = option(None, "continue an interrupted run: its folder, or its URI (RESULTS_DIR/NAME)",
                                group=WHERE, metavar="RUN")
    verbose: bool = option(False, "show Ray Tune's own console output (its experiment banner, TensorBoard hint and "
                           "tables) and Optuna's info messages, and Ray's and the libraries' warnings; otherwise one "
                           "line per finished trial and the final tables, the warnings in RUN_DIR/run.log",
                           group=WHERE, kind="switch", shown="")
    dry_run: bool = option(False, "print the plan (space, trials and resources, what the cluster offers, an estimate "
                           "of trial-hours from timing a few real steps) and exit without training", group=WHERE,
                           kind="switch", shown="")
    config: str | None = option(None, "YAML file of options (names as the flags', without dashes in front); flags "
                                "override it", group=WHERE, metavar="FILE")
    # not an option: the options the user set (command line or --config), as opposed to their defaults
    given: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        for name in self.fields():  # a value given in another form (`replace(lora_ranks="4,16")`) is parsed too
            parse, value = self.option(name).metadata["parse"], getattr(self, name)
            if parse is not None and value is not None:
                object.__setattr__(self, name, parse(value))
        if self.num_samples is None:  # the derived default: a count, or a compute budget's cap
            object.__setattr__(self, "num_samples", NUM_SAMPLES if self.trial_seconds is None else BUDGETED_NUM_SAMPLES)
        for name in ("num_samples", "max_epochs", "train_size", "eval_size", "test_size", "max_length",
                     "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if self.fill_gaps < 0 or self.spread_points < 0:
            raise UsageError("--fill-gaps and --spread-points must not be negative (0: off)")
        if self.final_epochs is not None and self.final_epochs < 1:
            raise UsageError(f"--final-epochs must be at least 1 (got {self.final_epochs})")
        if self.final_epochs is not None and self.final_train_size is None:
            raise UsageError("--final-epochs has no effect without --final-train-size (the final stage's rows)")
        for name in ("confirm_seeds", "max_failures"):
            if (value := getattr(self, name)) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must not be negative (got {value}; 0: none)")
        if self.trial_seconds is not None and self.trial_seconds <= 0:
            raise UsageError(f"--trial-seconds must be positive (got {self.trial_seconds:g})")
        if self.grace_period != "auto" and self.grace_period < 1:  # type: ignore[operator]
            raise UsageError(f"--grace-period must be at least 1 epoch (got {self.grace_period})")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UsageError("--cpus-per-trial must be positive and --gpus-per-trial not negative")

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The options' names, in the order `--help` lists them."""
        return tuple(f.name for f in dataclasses.fields(cls) if "help" in f.metadata)

    @classmethod
    def option(cls, name: str) -> dataclasses.Field:
        return next(f for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def flag(cls, name: str) -> str:
        return cls.option(name).metadata["flag"] or "--" + name.replace("_", "-")

    @classmethod
    def default(cls, name: str) -> Any:
        f = cls.option(name)
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc,operator]

    @classmethod
    def shown_default(cls, name: str) -> str:
        """The default as `--help` and docs/options.md write it ("" where none is worth saying)."""
        shown = cls.option(name).metadata["shown"]
        if shown is not None:
            return shown
        default = cls.default(name)
        return "none" if default is None else flag_text(default)

    def text(self, name: str) -> str:
        """The option's value as the command line writes it (`2,8,32`, `6-11`)."""
        value = getattr(self, name)
        return "-".join(map(str, value)) if name == "layers" and value else flag_text(value)

    @classmethod
    def from_options(cls, options: dict[str, Any], given: frozenset[str] = frozenset()) -> RunConfig:
        """From a mapping of option to value (flags' strings, YAML's or run.json's values; options left out take
        their defaults): each parsed into its field's type, then checked (`--num-samples` derived from
        `--trial-seconds` where not given). `given`: the options the user set."""
        values: dict[str, Any] = {}
        for name in cls.fields():
            if name not in options:
                continue
            value, parse = options[name], cls.option(name).metadata["parse"]
            values[name] = parse(value) if parse is not None and value is not None else value
        return cls(**values, given=frozenset(given) & set(cls.fields()))

    @classmethod
    def defaults(cls) -> RunConfig:
        """What `python -m search.run` with no flags runs."""
        return cls.from_options({})

    @classmethod
    def from_saved(cls, saved: dict[str, Any], **changes: Any) -> RunConfig:
        """A run's options as its run.json saved them (`run.json`'s `args`), then `changes` (where this driver
        differs: its address, the run's folder). Options added since take their defaults, except those that
        change what a trial computes (`LEGACY_OPTIONS`), which keep what the run was started with; options
        since removed are dropped. What the user set is what the run saved as `given`; a run saved before that
        was kept, the options whose values were not the defaults (a switch-values the user named, which such a
        run saved, and none otherwise)."""
        known = set(cls.fields())
        legacy = {k: v for k, v in LEGACY_OPTIONS.items() if k not in saved}
        kept = {k: v for k, v in saved.items() if k in known}
        if "given" in saved:
            given = frozenset(saved["given"])
        else:
            if "switch_values" in kept and kept["switch_values"] is None:  # such a run's None: the space's default
                kept.pop("switch_values")
            defaults, parsed = cls.defaults(), cls.from_options({**legacy, **kept})
            given = frozenset(k for k in kept if getattr(parsed, k) != getattr(defaults, k))
            given |= {"switch_values"} & set(kept)
        return cls.from_options({**legacy, **kept, **changes}, given)

    def replace(self, **changes: Any) -> RunConfig:
        """A new configuration with `changes` (checked as any other; what the user set unchanged); this one is
        unchanged."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as run.json saves them, what the user set as `given` (`from_saved` reads them back)."""
        options = {name: getattr(self, name) for name in self.fields()}
        return {**options, "given": sorted(self.given)}
