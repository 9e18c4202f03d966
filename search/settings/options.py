"""Command-line options of `python -m search.run`, with a YAML config file whose values flags override."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from search.settings.config import BUDGETED_NUM_SAMPLES, NUM_SAMPLES, RunConfig
from spaces import DEFAULT_MODEL, GRANULARITIES, POOLINGS, WITHOUT_LORA, ArgumentParser, SpaceConfig, UsageError
from trainables import GLUE

LR_SCALE_RANGE = f"{SpaceConfig.lr_scale_min:g},{SpaceConfig.lr_scale_max:g}"
LORA_RANKS = ",".join(str(r) for r in SpaceConfig.lora_ranks)
DEFAULT_SWITCH_VALUES = ",".join(SpaceConfig.values)  # --switch-values when not given (None: not the user's choice)
PAPER_SWITCH_VALUES = ",".join(WITHOUT_LORA)  # the paper's studies: whole modules and BitFit's biases, no LoRA
__all__ = ["build_parser", "parse_args", "parse_namespace"]

SCHEDULERS = ("pareto-asha", "asha", "none")
SAMPLERS = ("tpe", "nsga2", "random", "gp")



STUDIES = ("search", "presets", "paper-modules", "paper-layers")
# Early stopping's first rung (--grace-period): `auto` puts it after MIN_RUNG_STEPS optimizer steps, the fewest
# that stopped few of the trainings that end on a recorded table's front (docs/measurements.md, "The learning
# rate and the first rung").
GRACE_PERIOD = "auto"
MIN_RUNG_STEPS = 64


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = ArgumentParser(
        add_help=add_help,
        prog="python -m search.run",
        description="Search which modules in which layers of a pre-trained encoder to fine-tune: "
        "the Pareto frontier of task metric vs. trainable parameters.",
    )
    what = p.add_argument_group("model and data")
    what.add_argument("--model", default=DEFAULT_MODEL, help="alias (minilm), local HF folder, or hub id")
    what.add_argument("--task", default="rotten_tomatoes",
                      help=f"rotten_tomatoes (built in, offline), a GLUE task ({', '.join(GLUE)}: from --data-dir, "
                      "else the hub), or a name for --data")
    what.add_argument("--data-dir", default=None,
                      help="folder with a GLUE task's train and validation files (Parquet, CSV, TSV or JSON Lines "
                      "with the hub's columns), or one subfolder per task")
    what.add_argument("--data", help="local CSV, TSV, JSON Lines or Parquet file instead of a built-in task")
    what.add_argument("--text-column", default="text")
    what.add_argument("--text-pair-column", default=None)
    what.add_argument("--label-column", default="label")
    what.add_argument("--regression", action="store_true", help="--data labels are numbers to predict (MSE loss)")
    what.add_argument("--metric", default=None,
                      help="metric to optimise instead of the task's standard one: accuracy, f1, "
                      "matthews_correlation (classification), pearson, spearman (regression)")
    # 512 training rows keep the default run within 10 minutes on 2 CPU cores (docs/measurements.md, "What the
    # default run finds"); 1,024 validation rows, not 256, are what let the search's choices hold up on test rows
    # (docs/measurements.md, "Rotten Tomatoes with four times the validation rows")
    what.add_argument("--train-size", type=int, default=512, help="training rows used (default 512)")
    what.add_argument("--eval-size", type=int, default=1024,
                      help="validation rows the search chooses on (default 1024, or as many as the split has; with "
                      "256, one standard error of accuracy is about 3 points, and the search's choices among "
                      "neighbouring sub-networks did not hold up on test rows)")
    what.add_argument("--test-size", type=int, default=768,
                      help="held-out test rows scored once at the end (default 768: +-3 points of accuracy at "
                      "95%%, and the default run within 10 minutes on 2 CPU cores; more rows, tighter intervals)")
    what.add_argument("--max-length", type=int, default=64, help="tokens per text (default 64)")
    what.add_argument("--pooling", default="auto", choices=POOLINGS,
                      help="what the classification head reads: cls (the architecture's own head: first token, "
                      "through its pooler) or mean (mean of the last layer's tokens); auto (default) reads a "
                      "sentence-transformers folder's pooling config, else cls")

    search = p.add_argument_group("search")
    search.add_argument("--granularity", choices=GRANULARITIES, default="module")
    search.add_argument("--modules", default=None,
                        help="comma-separated module types / non-layer units that may be trained (default all)")
    search.add_argument("--layers", default=None, help="layers that may be trained, FIRST-LAST (default all)")
    search.add_argument("--max-params", type=int, default=None,
                        help="never train a sub-network with more trainable parameters (head included)")
    search.add_argument("--switch-values", default=None,
                        help="what a switch may be: off, bias (BitFit), weight, all, lora (a LoRA adapter on the "
                        "switch's linear layers, one value per rank of --lora-ranks) "
                        f"(default {DEFAULT_SWITCH_VALUES}; a switch whose modules have no biases offers no bias, one "
                        "without a linear layer no lora)")
    search.add_argument("--lora-ranks", default=LORA_RANKS, metavar="R,R,...",
                        help="with lora among --switch-values: the ranks a switch's adapter may have, each a value of "
                        f"its own (default {LORA_RANKS}, each left out of a switch whose layers it does not fit; "
                        "ranks you name must fit every searched layer; the LoRA presets take the one nearest 8)")
    search.add_argument("--study", choices=STUDIES, default="search",
                        help="search (default); presets: train exactly the reference points, no early stopping; "
                        "paper-modules: the paper's module-wise study (each module type alone, full, head, BitFit, "
                        "all LayerNorms) over --study-seeds seeds; paper-layers: the LayerNorms of each single layer")
    search.add_argument("--study-seeds", type=int, default=3, help="seeds per point of a paper study (default 3)")
    search.add_argument("--num-samples", type=int, default=None,
                        help=f"trials, reference points included (default {NUM_SAMPLES}; with --trial-seconds, "
                        f"{BUDGETED_NUM_SAMPLES:,}: the budget ends the search)")
    search.add_argument("--max-epochs", type=int, default=3, help="full budget of a trial, in epochs")
    search.add_argument("--trial-seconds", type=float, default=None, metavar="SECONDS",
                        help="a compute budget: once the trials have trained this many seconds in all (each epoch's "
                        "seconds, summed over trials), no trial starts and none is promoted; running ones finish "
                        "(default: none; --num-samples, if given, still caps the trials)")
    search.add_argument("--scheduler", choices=SCHEDULERS, default="pareto-asha",
                        help="early stopping: pareto-asha (ranks on metric and trainable params; default), "
                        "asha (metric only), none")
    search.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                        help="Optuna's sampler: tpe (multivariate TPE; default), nsga2, random, or gp (a Gaussian "
                        "process, whose proposals cost driver CPU that grows with the trials)")
    search.add_argument("--no-reference-points", dest="reference_points", action="store_false",
                        help="do not seed the search with full, head, bitfit, layernorm and each module alone")
    search.add_argument("--spread-points", type=int, default=5,
                        help="the first proposals, where fewer reference points are given: this many sub-networks "
                        "spread over parameter budgets, cheapest and largest first (default 5; 0: the sampler's own)")
    search.add_argument("--fill-gaps", type=int, default=4, metavar="K",
                        help="every K-th proposal fills the widest gap (in parameters) of the front found so far "
                        "with a random sub-network of a size inside it (default 4; 0: off)")
    search.add_argument("--lr-scale-range", default=LR_SCALE_RANGE, metavar="LOW,HIGH",
                        help="each proposal's learning rate is the size rule's (spaces.reference_lr) times a scale "
                        f"the sampler draws log-uniformly from LOW..HIGH, which must contain 1 "
                        f"(default {LR_SCALE_RANGE}"
                        "; 1,1: the size rule alone)")
    search.add_argument("--grace-period", default=GRACE_PERIOD, metavar="EPOCHS|auto",
                        help="early stopping's first decision comes after this many epochs (ASHA's grace period; "
                        "rungs at GRACE x 3^k below --max-epochs; --max-epochs or more: none). Default auto: after "
                        f"the fewest epochs that hold {MIN_RUNG_STEPS} optimizer steps (at 512 rows in batches of 32, "
                        "4 epochs)")
    search.add_argument("--batch-size", type=int, default=32)
    search.add_argument("--lr-groups", action=argparse.BooleanOptionalAction, default=True,
                        help="train the new classification head at no less than 5e-3 x the trial's lr scale, the "
                        "pre-trained parameters at the trial's lr (default on; --no-lr-groups: one rate for all)")
    search.add_argument("--eval-every-epoch", action=argparse.BooleanOptionalAction, default=False,
                        help="validate every trial after every epoch (learning curves in the report); default: only "
                        "after the epochs early stopping decides on and the last, since validating "
                        "--eval-size rows costs about as much as a training epoch")
    search.add_argument("--no-prefix-cache", action="store_true",
                        help="run the frozen layers below the trained ones every step (default: their outputs are "
                        "computed once, in eval mode, and shared by the trials)")
    search.add_argument("--replay", metavar="TABLE", default=None,
                        help="Parquet table of recorded curves: trials replay them instead of training")
    search.add_argument("--replay-time-scale", type=float, default=0.0,
                        help="with --replay, sleep this fraction of each recorded epoch's seconds")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--confirm-seeds", type=int, default=0, metavar="K",
                        help="after the search, train each frontier point again with K more seeds and report the "
                        "mean and spread of its metric (confirm.csv)")

    where = p.add_argument_group("where it runs")
    where.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster's head)")
    where.add_argument("--cpus-per-trial", type=float, default=1.0)
    where.add_argument("--gpus-per-trial", type=float, default=0.0)
    where.add_argument("--max-failures", type=int, default=2,
                       help="retries of a crashed trial, from its last checkpoint (default 2)")
    where.add_argument("--results-dir", default=os.environ.get("TICKETSEARCH_RESULTS_DIR", "results"),
                       help="folder, or storage URI (s3://BUCKET/PREFIX, gs://...; MinIO and other S3-compatible "
                       "stores with ?endpoint_override=HOST:PORT&scheme=http), that holds the runs; default "
                       "$TICKETSEARCH_RESULTS_DIR, else results")
    where.add_argument("--local-dir", default="results",
                       help="with a storage URI: where the driver keeps its working copy of the run (default results)")
    where.add_argument("--name", default=None, help="run name (default: model-task-time)")
    where.add_argument("--resume", metavar="RUN", default=None,
                       help="continue an interrupted run: its folder, or its URI (RESULTS_DIR/NAME)")
    where.add_argument("--verbose", action="store_true",
                       help="show Ray Tune's own console output (its experiment banner, TensorBoard hint and tables) "
                       "and Optuna's info messages, and Ray's and the libraries' warnings; by default one line per "
                       "finished trial and the final tables, the warnings in RUN_DIR/run.log")
    where.add_argument("--dry-run", action="store_true",
                       help="print the plan (space, trials and resources, what the cluster offers, an estimate of "
                       "trial-hours from timing a few real steps) and exit without training")
    where.add_argument("--config", metavar="FILE", default=None, help="YAML file of options; flags override it")
    return p


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """A run's options from the command line (`argv`, or sys.argv) and the `--config` YAML it names, checked and
    frozen: bad input raises UsageError (one line; `python -m search.run` exits 2 with it)."""
    return RunConfig.from_argv(argv)


def parse_namespace(argv: list[str] | None = None, add_help: bool = True) -> argparse.Namespace:
    """The parser's namespace of `argv` and the `--config` YAML it names, flags over the file; not yet checked
    (`RunConfig.from_options` checks it). Without `add_help`, `--help` is an unknown option, not printed help."""
    parser = build_parser(add_help)
    first, _ = parser.parse_known_args(argv)
    if first.config:
        path = Path(first.config)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise UsageError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"config file {path} must be a mapping of option: value")
        known = {a.dest for a in parser._actions}
        defaults = {}
        for key, value in loaded.items():
            dest = str(key).replace("-", "_")
            if dest not in known or dest in ("help", "config"):
                raise UsageError(f"unknown option '{key}' in config file {path}")
            defaults[dest] = value
        parser.set_defaults(**defaults)
    return parser.parse_args(argv)
