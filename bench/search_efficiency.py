"""How much compute each search strategy needs to find a table's Pareto front: a fair harness.

    .venv/bin/python bench/search_efficiency.py --table bench/tables/minilm-rotten_tomatoes-modules.parquet \
        [--seeds 10] [--strategies default,random,...] [--workers 4] [--out bench/results]

Every strategy is made of the product's own pieces: `search.ParetoOptunaSearch` with an Optuna sampler
and a Ray Tune scheduler (`search.make_scheduler`: Pareto-ASHA, ASHA or none). They are driven by a
discrete-event simulation of `--workers` workers: a trial's epochs take the seconds the table
recorded; the scheduler sees each epoch's result when it ends in simulated time; a freed worker
asks the searcher for the next proposal. Nothing is trained, so a search costs seconds, and runs are
exactly repeatable.

Fairness:
- every strategy gets the same budget in trial-seconds (by default what training every sub-network
  of the table to the full budget costs) and the same workers;
- compute is counted in trial-seconds (each trained epoch's recorded seconds, the headline), in
  trial-epochs, and in driver seconds (the searcher's and scheduler's own CPU time, measured);
- two arms. `unseeded`: the strategy knows nothing of the presets (no proposal is labelled a preset,
  none is protected from early stopping, no point is evaluated first). `seeded`: the paper's presets
  are evaluated first and, as in the product, protected. A strategy may not carry points of its own:
  what it is told is the arm's, and `run_once` refuses anything else;
- a baseline is set up as its own users would: Optuna's defaults for TPE, NSGA-II and the GP sampler;
  Syne Tune's MOASHA (`moasha`, driven through Syne Tune's scheduler API; unseeded only, as it takes no points)
  with its defaults (random proposals, grace period 1, reduction factor 3, non-dominated sort).

A product-space table (`bench/record_table.py --space product --sample N`: rows with an `lr_scale`) is searched in
search.run's own space, rebuilt from the table's model (`spaces.SubnetworkSpace`: off/bias/all switches and the
learning-rate scale, `--lr-scale-range` per strategy); every proposal is answered by a surrogate
(bench/surrogate.py) that takes the scale as an input (`ProductTable`).

Hypervolume is on (metric, log10 trainable params) against the table's reference point (majority-class
metric, log10 of all parameters). "The best-known front" is the union of the table's recorded points
and every point any strategy trained to the full budget. Writes NAME.search_efficiency.{json,md,png};
the quartiles and the seeds that reach the target are computed here.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the GP sampler's torch: one core per search, as a driver has

import numpy as np  # noqa: E402

from search import (  # noqa: E402
    GRACE_PERIOD,
    ParetoOptunaSearch,
    first_rung,
    hypervolume,
    hypervolume_curve,
    make_sampler,
    make_scheduler,
    pareto_mask,
    parse_args,
    reference_point,
)
from spaces import ArgumentParser, UsageError, refs_from_switches, run_cli  # noqa: E402

TARGET = 0.95
NEEDED_COLUMNS = ("switches", "units", "trainable_params", "lr", "epoch", "metric", "epoch_seconds")
# The product's code a simulated search runs through: a logged search made by other code is searched again.
SEARCH_CODE = ("search/steer/strategies.py", "search/steer/searcher.py", "search/steer/pareto_asha.py",
               "search/steer/pareto.py", "search/compat.py", "spaces/_space.py")
PRESET_KEY = "preset"


@dataclass(frozen=True)
class Strategy:
    """A sampler (an Optuna sampler name and its options) and a scheduler; `presets_only` trains the presets."""

    sampler: str
    scheduler: str
    sampler_options: dict = field(default_factory=dict)
    presets_only: bool = False
    spread: int = 0  # the first proposals, filled up to this many with settings spread over parameter budgets
    second_chance: bool = True  # Pareto-ASHA pauses below its cut and promotes later (False: stops for good)
    fill_gaps: int = 0  # every K-th proposal fills the widest gap of the front so far (search.run's --fill-gaps)
    grace_period: int | str = 1  # the first rung, in epochs, or auto (search.run's --grace-period)
    peer: str = ""  # another library's multi-objective search, driven through its own API (PEERS); unseeded only
    lr_range: tuple[float, float] | None = None  # a product-space table: --lr-scale-range (None: search.run's)


RUN_DEFAULTS = parse_args([])  # what `python -m search.run` does, read from its own options
STRATEGIES = {
    "presets": Strategy("random", "none", presets_only=True),
    "random": Strategy("random", "none"),
    "tpe": Strategy("tpe", "none", {"multivariate": False, "n_startup_trials": 10}),  # Optuna's defaults
    "gp": Strategy("gp", "none", {"n_startup_trials": 10}),
    "nsga2": Strategy("nsga2", "none", {"population_size": 50}),  # Optuna's default population
    "nsga2-10": Strategy("nsga2", "none", {"population_size": 10}),
    "asha+tpe": Strategy("tpe", "asha"),
    "random+pareto-asha": Strategy("random", "pareto-asha"),
    "tpe+pareto-asha": Strategy("tpe", "pareto-asha"),  # the default without its spread start (ablation)
    # what `python -m search.run` does
    "default": Strategy(RUN_DEFAULTS.sampler, RUN_DEFAULTS.scheduler, spread=RUN_DEFAULTS.spread_points,
                        fill_gaps=RUN_DEFAULTS.fill_gaps, grace_period=RUN_DEFAULTS.grace_period),
    "default-nogaps": Strategy("tpe", "pareto-asha", spread=5),  # ablation: --fill-gaps 0
    "default-stop": Strategy("tpe", "pareto-asha", spread=5, second_chance=False),  # ablation: neither
    "default-grace1": Strategy("tpe", "pareto-asha", spread=5, fill_gaps=4),  # ablation: the first rung at epoch 1
    "default-grace2": Strategy("tpe", "pareto-asha", spread=5, fill_gaps=4, grace_period=2),  # ... at epoch 2
    "default-nostop": Strategy("tpe", "none", spread=5, fill_gaps=4),  # ablation: no early stopping
    # Syne Tune's MOASHA as its users set it up: random proposals, multi-objective ASHA (its non-dominated
    # sort of each rung), grace period 1, reduction factor 3; both objectives minimised (-metric, params)
    "moasha": Strategy("random", "none", peer="syne-tune-moasha"),
    # ablation: the default's TPE proposing each parameter on its own (Optuna's default), not jointly
    "default-indep": Strategy("tpe", "pareto-asha", {"multivariate": False}, spread=5, fill_gaps=4,
                              grace_period=GRACE_PERIOD),
    # ablation (bench/driver_scale.py): the default's TPE reading every finished trial, as Optuna's does, never a
    # window of its history (search.steer.tpe.HISTORY)
    "default-all-history": Strategy("tpe", "pareto-asha", {"history": 10**9}, spread=5, fill_gaps=4,
                                    grace_period=GRACE_PERIOD),
    # and reading half the default's window (history 500)
    "default-history500": Strategy("tpe", "pareto-asha", {"history": 500}, spread=5, fill_gaps=4,
                                   grace_period=GRACE_PERIOD),
    # the learning-rate rule (product-space tables): the default with another --lr-scale-range
    "default-lr1": Strategy("tpe", "pareto-asha", spread=5, fill_gaps=4, grace_period=GRACE_PERIOD, lr_range=(1, 1)),
    "default-lr0.5-2": Strategy("tpe", "pareto-asha", spread=5, fill_gaps=4, grace_period=GRACE_PERIOD,
                                lr_range=(0.5, 2)),
    "default-lr0.3-10": Strategy("tpe", "pareto-asha", spread=5, fill_gaps=4, grace_period=GRACE_PERIOD,
                                 lr_range=(0.3, 10)),
}
BATCH_SIZE = RUN_DEFAULTS.batch_size  # the recorder's and search.run's: a rung counted in steps needs it


class Table:
    """A recorded table: each sub-network (a set of switches on) with its units, cost, lr and curve.

    With `surrogate`, a sub-network the table does not hold is answered by bench/surrogate.py's
    model (fitted on the table's seed-0 rows), its parameters and units added up from the table's
    single-switch rows; `recorded` stays what was measured.
    """

    def __init__(self, path: str, surrogate: bool = False):
        from bench.surrogate import read_table

        rows, meta, self.switches = read_table(path, NEEDED_COLUMNS)
        self.path = path
        self.name = Path(path).stem
        self.epochs = max(r["epoch"] for r in rows)
        self.train_rows = rows[0].get("train_rows")  # a rung counted in optimizer steps needs it
        self.metric = rows[0].get("metric_name") or "accuracy"
        self.entries: dict[frozenset, dict] = {}
        for r in rows:
            if r.get("seed", 0) not in (0, None):  # other seeds of a point: noise estimates, not the point
                continue
            entry = self.entries.setdefault(frozenset(r["switches"]), {
                "units": list(r["units"]), "lr": r["lr"], "params": int(r["trainable_params"]), "curve": {}})
            entry["curve"][int(r["epoch"])] = (float(r["metric"]), float(r["cost"]))
            if r.get("eval_loss") is not None:  # Pareto-ASHA's tie-breaker, as in a real search
                entry.setdefault("loss", {})[int(r["epoch"])] = float(r["eval_loss"])
        self._by_units = {tuple(sorted(e["units"])): k for k, e in self.entries.items()}
        incomplete = [k for k, e in self.entries.items() if len(e["curve"]) < self.epochs]
        if incomplete:
            raise UsageError(f"table {path}: {len(incomplete)} sub-network(s) lack some of epochs 1..{self.epochs}")
        finals = [e["curve"][self.epochs][0] for e in self.entries.values()]
        params = [e["params"] for e in self.entries.values()]
        # Tables without the metadata (other recorders): the worst final metric, 10x the largest sub-network.
        self.reference = reference_point(float(meta.get("majority_metric", min(finals))),
                                         int(meta.get("total_params", 10 * max(params))))
        self.exhaustive_seconds = sum(s for e in self.entries.values() for _, s in e["curve"].values())
        self.recorded = dict(self.entries)
        self.surrogate = None
        self.lookup_seconds = 0.0  # CPU seconds spent answering from the surrogate: the benchmark's, not a searcher's
        if surrogate:
            self._fit_surrogate()

    def _fit_surrogate(self) -> None:
        from bench.surrogate import Surrogate

        singles = {next(iter(k)): e for k, e in self.recorded.items() if len(k) == 1}
        head = self.recorded.get(frozenset())
        if head is None or set(singles) != set(self.switches):
            raise UsageError(f"table {self.path}: a surrogate needs head only and every switch alone recorded")
        self.head_params = head["params"]
        self.switch_params = {s: e["params"] - head["params"] for s, e in singles.items()}
        self.switch_units = {s: list(e["units"]) for s, e in singles.items()}
        self.surrogate = Surrogate(self.switches, self.epochs).fit(self.recorded)
        self.lr_of = {len(k): e["lr"] for k, e in self.recorded.items()}

    def entry(self, on: frozenset) -> dict:
        """The sub-network's units, params, lr and curve: recorded, else (with a surrogate) predicted."""
        if on not in self.entries:
            if self.surrogate is None:
                raise KeyError(f"{self.describe(on)} is not in the table")
            from spaces import reference_lr

            tick = time.process_time()
            params = self.head_params + sum(self.switch_params[s] for s in on)
            units = [u for s in self.switches if s in on for u in self.switch_units[s]]
            self.entries[on] = {"units": units, "params": params, "curve": self.surrogate.curve(on, params),
                                "lr": reference_lr(params, int(10 ** self.reference[1]))}
            loss = self.surrogate.loss(on, params)
            if loss:  # Pareto-ASHA's tie-breaker, predicted as the metric is
                self.entries[on]["loss"] = loss
            self.lookup_seconds += time.process_time() - tick
            self._by_units[tuple(sorted(units))] = on
        return self.entries[on]

    def params_of(self, on: frozenset) -> int:
        """Trainable parameters of a selection, known before it trains (no metric is read)."""
        if on in self.recorded:
            return self.recorded[on]["params"]
        return self.entry(on)["params"]

    def key_of(self, config: dict) -> frozenset:
        """The table's key of a proposal (a space's config: its units)."""
        return self._by_units[tuple(sorted(config["units"]))]

    def make_space(self, label_presets: bool, lr_range=None) -> TableSpace:
        if lr_range is not None:
            raise UsageError(f"table {self.path} was recorded at one learning rate: a strategy with its own "
                             "--lr-scale-range needs a product-space table (record_table.py --space product)")
        return TableSpace(self, label_presets)

    def space_size(self) -> int:
        return 2 ** len(self.switches)

    def moasha_space(self, lr_range=None) -> dict:
        from syne_tune.config_space import choice

        return {s: choice(["off", "all"]) for s in self.switches}

    def config_of(self, values: dict) -> dict:
        """A proposal as the table's space makes it, from switch values (a peer's suggestion)."""
        on = frozenset(s for s in self.switches if values[s] == "all")
        entry = self.entry(on)
        return {"units": entry["units"], "trainable_params": entry["params"], "lr": entry["lr"],
                "selection": self.describe(on), PRESET_KEY: None}

    def final(self, on: frozenset) -> tuple[float, int]:
        entry = self.entry(on)
        return entry["curve"][self.epochs][0], entry["params"]

    def presets(self) -> dict[frozenset, str]:
        """The paper's reference points over the table's switches (spaces.switch_presets) that it can answer."""
        from spaces import switch_presets

        return {on: name for name, on in switch_presets(self.switches).items()
                if on in self.entries or self.surrogate is not None}

    def describe(self, on: frozenset) -> str:
        return " + ".join(s for s in self.switches if s in on) or "head only"


class TableSpace:
    """Optuna define-by-run space over a table's switches (off/all each); the lr is the table's.

    `label_presets`: name the presets in each proposal (the seeded arm, as the product's space does);
    unseeded, no proposal carries that knowledge.
    """

    def __init__(self, table: Table, label_presets: bool):
        self.table = table
        self.presets = table.presets() if label_presets else {}

    def arm(self) -> dict[str, dict[str, str]]:
        """The seeded arm's points: the presets the table can answer, by name, as switch values."""
        return {name: self.switch_values(on) for on, name in self.table.presets().items()}

    def __call__(self, trial) -> dict:
        on = frozenset(s for s in self.table.switches if trial.suggest_categorical(s, ["off", "all"]) == "all")
        entry = self.table.entry(on)
        return {"units": entry["units"], "trainable_params": entry["params"], "lr": entry["lr"],
                "selection": self.table.describe(on), PRESET_KEY: self.presets.get(on)}

    def switch_values(self, on: frozenset) -> dict[str, str]:
        return {s: ("all" if s in on else "off") for s in self.table.switches}

    def _cost(self, values: dict[str, str]) -> int:  # known before anything trains
        return self.table.params_of(frozenset(s for s, v in values.items() if v != "off"))

    def spread_points(self, k: int, seed: int = 0) -> list[dict]:
        """As SubnetworkSpace.spread_points, over the table's on/off switches."""
        from spaces import spread_selections

        return spread_selections(self.table.switches, ("off", "all"), self._cost, k, seed)

    def gap_point(self, low: float, high: float, rng) -> dict | None:
        """As SubnetworkSpace.gap_point, over the table's on/off switches."""
        from spaces import gap_selection

        return gap_selection(self.table.switches, ("off", "all"), self._cost, low, high, rng)


class ProductTable:
    """A product-space table (`record_table.py --space product`): search.run's own space (its switches, their
    off/bias/all values, the learning-rate scale) rebuilt from the table's model (`spaces.SubnetworkSpace`), and a
    surrogate (bench/surrogate.py, the scale one of its inputs) fitted on the recorded seed-0 trainings.

    Every sub-network, recorded or not, is answered by the surrogate, at any scale: one world for every strategy,
    whose best-known front includes the recorded trainings' predicted points. `recorded` keeps what was
    measured (for the surrogate's validation). A key is (the switch names on, as the recorder writes them:
    `query`, `attn.norm:bias`; the lr_scale to 4 significant digits)."""

    surrogate = True

    def __init__(self, path: str, model: str | None = None):
        from bench.surrogate import Surrogate, is_scaled, read_table, scale_key
        from spaces import WITHOUT_LORA, SpaceConfig, SubnetworkSpace, load_taxonomy, resolve_model, resolve_pooling

        rows, meta, names = read_table(path, (*NEEDED_COLUMNS, "lr_scale"))
        if not is_scaled(rows):
            raise UsageError(f"table {path} is not a product-space table (record_table.py --space product): "
                             "rows without an lr_scale")
        for needed in ("num_labels", "total_params", "majority_metric"):
            if needed not in meta:
                raise UsageError(f"table {path} lacks the metadata '{needed}' (rewrite it with this version of "
                                 "record_table.py: the same command with --limit 0)")
        self.path, self.name = path, Path(path).stem
        self.epochs = max(r["epoch"] for r in rows)
        self.train_rows = rows[0].get("train_rows")
        self.metric = rows[0].get("metric_name") or "accuracy"
        self.scale_key = scale_key
        model = model or meta.get("model") or rows[0]["model"]
        pooling = meta.get("pooling") or resolve_pooling("auto", resolve_model(model))
        taxonomy = load_taxonomy(model, int(meta["num_labels"]), pooling)
        if taxonomy.total_params != int(meta["total_params"]):
            raise UsageError(f"table {path} was recorded on a model of {int(meta['total_params']):,} parameters; "
                             f"{model} has {taxonomy.total_params:,}: give the table's model (--model)")
        # the space the product tables were recorded in: switches off, bias or all (a key names no LoRA value)
        self.space = SubnetworkSpace(taxonomy, SpaceConfig(granularity=meta.get("granularity", "module"),
                                                           values=WITHOUT_LORA))
        self.taxonomy = taxonomy
        # Each switch's unit references per value: a proposal's units say its switch values.
        self._refs = {s: {v: frozenset(refs_from_switches(self.space.switch_units, {s: v}))
                          for v in self.space.values_of[s] if v != "off"} for s in self.space.switch_units}
        self.switches = names
        self.recorded: dict[tuple, dict] = {}
        for r in rows:
            if r.get("seed", 0) not in (0, None):
                continue
            key = (frozenset(r["switches"]), scale_key(r["lr_scale"]))
            entry = self.recorded.setdefault(key, {"units": list(r["units"]), "lr": r["lr"],
                                                   "params": int(r["trainable_params"]), "curve": {}, "loss": {}})
            entry["curve"][int(r["epoch"])] = (float(r["metric"]), float(r["cost"]))
            if r.get("eval_loss") is not None:
                entry["loss"][int(r["epoch"])] = float(r["eval_loss"])
        for key, entry in self.recorded.items():
            if len(entry["curve"]) < self.epochs:
                raise UsageError(f"table {path}: {self.describe(key)} lacks some of epochs 1..{self.epochs}")
            if taxonomy.count(entry["units"]) != entry["params"]:
                raise UsageError(f"table {path}: {self.describe(key)} has {entry['params']:,} parameters there, "
                                 f"{taxonomy.count(entry['units']):,} in {model}'s space: not this model's table")
        self.reference = reference_point(float(meta["majority_metric"]), int(meta["total_params"]))
        self.exhaustive_seconds = sum(s for e in self.recorded.values() for _, s in e["curve"].values())
        self.surrogate = Surrogate(names, self.epochs, scaled=True).fit(self.recorded)
        self.entries: dict[tuple, dict] = {}
        self.lookup_seconds = 0.0

    def _values(self, names: frozenset) -> dict[str, str]:
        values = dict.fromkeys(self.space.switch_units, "off")
        for name in names:
            switch, _, value = name.partition(":")
            values[switch] = value or "all"
        return values

    def key_of(self, config: dict) -> tuple:
        units, names = set(config["units"]), []
        for switch, by_value in self._refs.items():
            for value in ("all", "weight", "bias"):
                if value in by_value and by_value[value] <= units:
                    names.append(switch + ("" if value == "all" else f":{value}"))
                    break
        return frozenset(names), self.scale_key(config["lr_scale"])

    def entry(self, key: tuple) -> dict:
        if key not in self.entries:
            tick = time.process_time()
            proposal = self.space.proposal(self._values(key[0]), key[1])
            params = proposal["trainable_params"]
            self.entries[key] = {"units": proposal["units"], "params": params, "lr": proposal["lr"],
                                 "curve": self.surrogate.curve(key, params)}
            loss = self.surrogate.loss(key, params)
            if loss:
                self.entries[key]["loss"] = loss
            self.lookup_seconds += time.process_time() - tick
        return self.entries[key]

    def params_of(self, key: tuple) -> int:
        return self.entry(key)["params"]

    def final(self, key: tuple) -> tuple[float, int]:
        entry = self.entry(key)
        return entry["curve"][self.epochs][0], entry["params"]

    def describe(self, key: tuple) -> str:
        from spaces import describe_switches

        return f"{describe_switches(self._values(key[0]))} @ lr x{key[1]:g}"

    def space_size(self) -> int:
        return self.space.size()

    def make_space(self, label_presets: bool, lr_range=None) -> ProductTableSpace:
        return ProductTableSpace(self, label_presets, lr_range)

    def moasha_space(self, lr_range=None) -> dict:
        from syne_tune.config_space import choice, loguniform

        low, high = lr_range or (self.space.config.lr_scale_min, self.space.config.lr_scale_max)
        return {**{s: choice(list(v)) for s, v in self.space.values_of.items()},
                "lr_scale": loguniform(low, high) if high > low else low}

    def config_of(self, values: dict) -> dict:
        """A proposal as search.run's space makes it (`SubnetworkSpace.proposal`), from switch values and a scale
        (a peer's suggestion), labelled no preset."""
        switches = {s: v for s, v in values.items() if s in self.space.switch_units}
        return {**self.space.proposal(switches, float(values["lr_scale"])), PRESET_KEY: None}


class ProductTableSpace:
    """search.run's own space (`spaces.SubnetworkSpace`) over a product table: the product's proposals, spread
    start, gap points and presets; `lr_range` a strategy's --lr-scale-range. Unseeded, no proposal is labelled."""

    def __init__(self, table: ProductTable, label_presets: bool, lr_range=None):
        import dataclasses

        from spaces import SubnetworkSpace

        config = table.space.config
        if lr_range is not None:
            config = dataclasses.replace(config, lr_scale_min=lr_range[0], lr_scale_max=lr_range[1])
        self.space = SubnetworkSpace(table.taxonomy, config)
        self.label_presets = label_presets

    def __call__(self, trial) -> dict:
        config = self.space(trial)
        return config if self.label_presets else {**config, PRESET_KEY: None}

    def arm(self) -> dict[str, dict]:
        return self.space.seed_points()

    def spread_points(self, k: int, seed: int = 0) -> list[dict]:
        return self.space.spread_points(k, seed)

    def gap_point(self, low: float, high: float, rng) -> dict | None:
        return self.space.gap_point(low, high, rng)


def open_table(path: str, surrogate: bool = False, model: str | None = None):
    """A recorded table for the harness: a product-space table (every row has an lr_scale) as ProductTable,
    answered by its surrogate; any other as Table (`surrogate`: answer what it lacks)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read table {path}: {exc}") from None
    if "lr_scale" in schema.names and not pq.read_table(path, columns=["lr_scale"]).column("lr_scale").null_count:
        return ProductTable(path, model)
    return Table(path, surrogate=surrogate)


class SyneTuneMOASHA:
    """Syne Tune's MOASHA in the harness: the searcher's and the scheduler's calls of run_once, answered through
    Syne Tune's own scheduler API (suggest, on_trial_add, on_trial_result, on_trial_complete), no pauses.

    MOASHA proposes each switch's value uniformly at random (its config space: choice(off, all) per switch) and
    stops a trial at a rung when it is not in the top 1/3 of the rung by non-dominated sort of (-metric, params).
    It may propose a sub-network twice, as its users get it; the harness trains it again."""

    repeats = 0
    gap_proposals = 0
    protect_key = None

    def __init__(self, table, seed: int, lr_range=None):
        import numpy as np
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        np.random.seed(seed)  # MOASHA samples configs and brackets from NumPy's global generator
        self.table = table
        self.moasha = MOASHA(table.moasha_space(lr_range), metrics=["neg_metric", "params"],
                             do_minimize=True, time_attr="epoch", max_t=table.epochs, grace_period=1,
                             reduction_factor=3, random_seed=seed)
        self.trials: dict[str, object] = {}

    # the searcher's side
    def suggest(self, trial_id: str) -> dict:
        from syne_tune.backend.trial_status import Trial as SyneTrial

        suggestion = self.moasha.suggest()
        self.trials[trial_id] = SyneTrial(trial_id=len(self.trials), config=suggestion.config, creation_time=None)
        return self.table.config_of(suggestion.config)

    def on_trial_result(self, trial_id, result) -> None:  # the searcher is told nothing: MOASHA samples at random
        return None

    def on_trial_paused(self, trial_id) -> None:
        return None

    # the scheduler's side
    def _result(self, result: dict) -> dict:
        return {"neg_metric": -result[self.table.metric], "params": result["trainable_params"],
                "epoch": result["epoch"]}

    def on_trial_add(self, runner, trial) -> None:
        self.moasha.on_trial_add(self.trials[trial.trial_id])

    def decide(self, runner, trial, result) -> str:
        from ray.tune.schedulers import TrialScheduler
        from syne_tune.optimizer.scheduler import SchedulerDecision

        decision = self.moasha.on_trial_result(self.trials[trial.trial_id], self._result(result))
        return TrialScheduler.STOP if decision == SchedulerDecision.STOP else TrialScheduler.CONTINUE

    def on_trial_complete(self, *args) -> None:
        if len(args) == 2:  # the searcher's call (trial_id, result): nothing to tell
            return
        _, trial, result = args
        if trial.trial_id in self.trials and self.trials[trial.trial_id].trial_id in self.moasha.trial_info:
            self.moasha.on_trial_complete(self.trials[trial.trial_id], self._result(result))

    def on_trial_remove(self, runner, trial) -> None:
        if self.trials[trial.trial_id].trial_id in self.moasha.trial_info:
            self.moasha.on_trial_remove(self.trials[trial.trial_id])


def _stub_trial(trial_id: str, config: dict):
    from ray.tune.experiment import Trial

    return Trial("__replayed", config=config, trial_id=trial_id, stub=True)


def run_once(table: Table, name: str, strategy: Strategy, seed: int, seeded: bool, workers: int,
             budget_seconds: float, points: list[dict] | None = None, max_trials: int | None = None,
             timings: list | None = None, run_dir: Path | None = None) -> dict:
    """One search, simulated. Returns its events in the order results arrived (simulated time).

    `points`: only for the seeded arm, and only the arm's presets; anything else is refused, so that
    no strategy can be told the answer and pass as unseeded. `max_trials`: start no more trials than this.
    `timings`: each searcher and scheduler call is appended as (component, call, trials started so far,
    results so far, CPU seconds): bench/driver_scale.py's cost per decision. `run_dir`: the searcher keeps its
    study in an Optuna journal file there and Pareto-ASHA its state file, as `python -m search.run` does (else
    in memory).
    """
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    from spaces import start_points

    if strategy.peer and seeded:
        raise ValueError(f"{name} ({strategy.peer}) is given no points: it has only an unseeded arm")
    space = table.make_space(label_presets=seeded, lr_range=strategy.lr_range)
    arm = space.arm() if seeded else {}
    arm_points = list(arm.values()) if seeded else None
    if points is not None and points != arm_points:
        raise ValueError(f"{name}: a strategy is given only its arm's points ({'the presets' if seeded else 'none'})")
    if strategy.presets_only and not seeded:
        raise ValueError(f"{name} trains the presets: it has only a seeded arm")
    # The product's own start (search.run's): the arm's points, filled up with settings spread over budgets.
    start = list(start_points(space, arm, strategy.spread, math.inf, seed).values())

    storage = None
    if run_dir is not None:  # as search.driver.tuner.build_tuner keeps them
        from search import OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE, SearchJournal

        storage = SearchJournal(str(run_dir / OPTUNA_JOURNAL_FILE))
    peer = SyneTuneMOASHA(table, seed, strategy.lr_range) if strategy.peer == "syne-tune-moasha" else None
    searcher = peer or ParetoOptunaSearch(
        space=space, metric=[table.metric, "trainable_params"], mode=["max", "min"],
        points_to_evaluate=start or None, max_epochs=table.epochs,
        sampler=make_sampler(strategy.sampler, seed, **strategy.sampler_options),
        fill_gaps=strategy.fill_gaps, gap_point=space.gap_point, seed=seed,
        **({"storage": storage, "study_name": run_dir.name} if storage is not None else {}),
    )
    if strategy.grace_period == "auto" and not table.train_rows:
        raise UsageError(f"table {table.path} does not say how many training rows it was recorded with: "
                         f"{name}'s first rung (--grace-period auto) is counted in optimizer steps")
    scheduler = peer or make_scheduler(strategy.scheduler, table.metric, table.epochs,
                               protect_key=PRESET_KEY if seeded else None, second_chance=strategy.second_chance,
                               grace_period=first_rung(strategy.grace_period, table.train_rows or 0, BATCH_SIZE),
                               state_path=str(run_dir / SCHEDULER_STATE_FILE) if run_dir is not None else None)
    planned = len(arm_points) if strategy.presets_only else (max_trials or math.inf)
    events, queue, trials, running, paused, promoted = [], [], {}, 0, {}, 0
    now, spent, driver, started, finished, counter, labelled = 0.0, 0.0, 0.0, 0, False, 0, 0

    def timed(call, *args):
        """Runs a searcher or scheduler call, adding its CPU seconds to the driver's (less the surrogate's)."""
        nonlocal driver
        tick, lookups = time.process_time(), table.lookup_seconds
        out = call(*args)
        seconds = time.process_time() - tick - (table.lookup_seconds - lookups)
        driver += seconds
        if timings is not None:
            owner = call.__self__
            timings.append(("searcher" if owner is searcher else "scheduler", call.__name__, started, len(events),
                            seconds))
        return out

    def start_next() -> bool:
        nonlocal started, running, finished, counter, labelled
        if finished or started >= planned or spent >= budget_seconds:
            return False
        trial_id = f"t{counter}"
        counter += 1
        config = timed(searcher.suggest, trial_id)
        if config is None or config is Searcher.FINISHED:
            finished = True
            return False
        on = table.key_of(config)
        labelled += config.get(PRESET_KEY) is not None
        trial = _stub_trial(trial_id, config)
        trials[trial_id] = (trial, on)
        timed(scheduler.on_trial_add, None, trial)
        seconds = table.entry(on)["curve"][1][1]
        heapq.heappush(queue, (now + seconds, trial_id, 1))
        started += 1
        running += 1
        return True

    def resume_promoted() -> bool:
        """As ParetoASHA.choose_trial_to_run, through the same ParetoASHA.promote_for_free_worker: with no new
        proposal to start, a paused trial that now ranks within its rung's cut."""
        nonlocal running, promoted
        if not paused:
            return False
        trial_id = timed(scheduler.promote_for_free_worker, list(paused), spent >= budget_seconds)
        if trial_id is None:
            return False
        epoch = paused.pop(trial_id)
        heapq.heappush(queue, (now + table.entry(trials[trial_id][1])["curve"][epoch + 1][1], trial_id, epoch + 1))
        running += 1
        promoted += 1
        return True

    def fill() -> None:
        while running < workers and (start_next() or resume_promoted()):
            pass

    fill()
    while queue:
        now, trial_id, epoch = heapq.heappop(queue)
        trial, on = trials[trial_id]
        entry = table.entry(on)
        value, seconds = entry["curve"][epoch]
        spent += seconds
        result = {table.metric: value, "trainable_params": entry["params"], "epoch": epoch,
                  "eval_loss": entry.get("loss", {}).get(epoch, 1.0 - value), "training_iteration": epoch}
        events.append({"trial": trial_id, "selection": table.describe(on), "epoch": epoch, "metric": value,
                       "params": entry["params"], "seconds": seconds, "time": now})
        timed(searcher.on_trial_result, trial_id, result)
        action = timed(scheduler.decide if peer else scheduler.on_trial_result, None, trial, result)
        if epoch >= table.epochs or action == TrialScheduler.STOP or spent >= budget_seconds:
            timed(scheduler.on_trial_complete, None, trial, result)
            timed(searcher.on_trial_complete, trial_id, result)
            running -= 1
            fill()
        elif action == TrialScheduler.PAUSE:  # frees its worker; the searcher is told, as Pareto-ASHA tells it
            timed(searcher.on_trial_paused, trial_id)
            paused[trial_id] = epoch
            running -= 1
            fill()
        else:
            heapq.heappush(queue, (now + entry["curve"][epoch + 1][1], trial_id, epoch + 1))
    # the search is over (nothing runs, nothing more is proposed): the paused trials left are stopped, as Ray would
    for trial_id in (scheduler.paused_to_stop(list(paused), True, False) if paused else []):
        timed(scheduler.on_trial_remove, None, trials[trial_id][0])
        timed(searcher.on_trial_complete, trial_id, None)
    return {"strategy": name, "seed": seed, "seeded": seeded, "events": events, "repeats": searcher.repeats,
            "started": started, "driver_seconds": driver, "labelled": labelled,
            "protected": getattr(scheduler, "protect_key", None), "promoted": promoted,
            "gap_proposals": searcher.gap_proposals, "definition": repr(strategy)}


def curve(table: Table, events: list[dict], best_hv: float) -> dict[str, np.ndarray]:
    """After each result: trial-epochs and trial-seconds spent, and the hypervolume found / the best-known."""
    if not events:
        return {"epochs": np.zeros(0), "seconds": np.zeros(0), "hv": np.zeros(0)}
    hv = hypervolume_curve([e["metric"] for e in events], [e["params"] for e in events],
                           [e["epoch"] for e in events], table.epochs, table.reference)
    return {"epochs": np.arange(1, len(events) + 1), "seconds": np.cumsum([e["seconds"] for e in events]),
            "hv": hv / best_hv}


def hv_at(c: dict[str, np.ndarray], seconds: float) -> float:
    """The hypervolume fraction found once `seconds` trial-seconds were spent."""
    i = int(np.searchsorted(c["seconds"], seconds, side="right"))
    return float(c["hv"][i - 1]) if i else 0.0


def to_reach(c: dict[str, np.ndarray], unit: str, target: float = TARGET) -> float:
    hit = np.nonzero(c["hv"] >= target - 1e-12)[0]
    return float(c[unit][hit[0]]) if len(hit) else math.inf


def best_known(table: Table, runs: list[dict]) -> tuple[float, int]:
    """Hypervolume of the union of the table's recorded points and every full-budget point found; its size."""
    points = {table.describe(on): table.final(on) for on in table.recorded}
    for run in runs:
        for e in run["events"]:
            if e["epoch"] == table.epochs:
                points.setdefault(e["selection"], (e["metric"], e["params"]))
    metric, params = zip(*points.values())
    return hypervolume(metric, params, table.reference), int(pareto_mask(metric, params).sum())


def front_shares(table: Table, runs: list[dict]) -> list[dict]:
    """Each best-known front point, and the share of the front's hypervolume left without its sub-network.

    In a product table a sub-network is found at many learning-rate scales whose points are (nearly) alike:
    "without it" removes the sub-network at every scale, and `ties` counts its other points on the front."""
    points = {table.describe(on): table.final(on) for on in table.recorded}
    for run in runs:
        for e in run["events"]:
            if e["epoch"] == table.epochs:
                points.setdefault(e["selection"], (e["metric"], e["params"]))

    def sub_network(name: str) -> str:
        return name.rsplit(" @ lr x", 1)[0]

    names = list(points)
    metric, params = zip(*(points[n] for n in names))
    whole = hypervolume(metric, params, table.reference)
    front = [names[i] for i in np.nonzero(pareto_mask(metric, params))[0]]
    out, seen = [], set()
    for name in sorted(front, key=lambda n: (points[n][1], -points[n][0])):
        if (sub_network(name), points[name]) in seen:
            continue
        seen.add((sub_network(name), points[name]))
        rest = [n for n in names if sub_network(n) != sub_network(name)]
        left = hypervolume([points[n][0] for n in rest], [points[n][1] for n in rest], table.reference)
        out.append({"selection": name, "metric": points[name][0], "params": points[name][1],
                    "share_left_without": left / whole,
                    "ties": sum(sub_network(n) == sub_network(name) for n in front) - 1})
    return out


def _quartiles(values: list[float]) -> list[float]:
    return [float(np.percentile(values, q, method="lower")) for q in (25, 50, 75)]


def presets_mark(table: Table, runs: list[dict], best_hv: float) -> dict | None:
    """What training the presets alone gives: its trial-seconds and hypervolume fraction (medians over its runs)."""
    group = [r for r in runs if STRATEGIES.get(r["strategy"], STRATEGIES["random"]).presets_only]
    curves = [curve(table, r["events"], best_hv) for r in group if r["events"]]
    if not curves:
        return None
    return {"seconds": float(np.median([c["seconds"][-1] for c in curves])),
            "hv": float(np.median([c["hv"][-1] for c in curves]))}


def summarise(table: Table, runs: list[dict], best_hv: float, budget: float) -> list[dict]:
    """Per strategy and arm: compute to 95% (quartiles), seeds reaching it, hypervolume along the budget, and,
    where the presets-only strategy ran, the hypervolume at the compute it spent and the seeds above its front."""
    out = []
    mark = presets_mark(table, runs, best_hv)
    for strategy in dict.fromkeys(r["strategy"] for r in runs):
        for seeded in (False, True):
            group = [r for r in runs if r["strategy"] == strategy and r["seeded"] == seeded]
            if not group:
                continue
            curves = [curve(table, r["events"], best_hv) for r in group]
            seconds = [to_reach(c, "seconds") for c in curves]
            epochs = [to_reach(c, "epochs") for c in curves]

            def at(fraction: float, curves=curves) -> float:
                return float(np.median([hv_at(c, budget * fraction) for c in curves]))

            out.append({
                "strategy": strategy, "seeded": seeded, "seeds": len(group),
                "seconds_to_95": _quartiles(seconds), "epochs_to_95": _quartiles(epochs),
                "reached_95": sum(math.isfinite(x) for x in seconds),
                "hv_at_quarter": at(0.25), "hv_at_half": at(0.5), "hv_at_end": at(1.0),
                "trials": float(np.median([len({e["trial"] for e in r["events"]}) for r in group])),
                "repeats": float(np.median([r["repeats"] for r in group])),
                "promoted": float(np.median([r.get("promoted", 0) for r in group])),
                "driver_seconds": float(np.median([r["driver_seconds"] for r in group])),
            })
            if mark:
                at_mark = [hv_at(c, mark["seconds"]) for c in curves]
                # when the search starts to pay: the trial-seconds at which its front first passes the presets'
                passes = [float(c["seconds"][above[0]]) if len(above := np.nonzero(c["hv"] > mark["hv"] + 1e-12)[0])
                          else math.inf for c in curves]
                out[-1] |= {"hv_at_presets_seconds": float(np.median(at_mark)),
                            "seconds_to_pass_presets": _quartiles(passes),
                            "above_presets_at_their_seconds": sum(h > mark["hv"] + 1e-12 for h in at_mark),
                            "above_presets_at_end": sum(c["hv"][-1] > mark["hv"] + 1e-12 for c in curves
                                                        if len(c["hv"]))}
    return out


def _fmt(quartiles: list[float]) -> str:
    low, mid, high = quartiles
    if not math.isfinite(mid):
        return "not reached"
    show = [f"{q:,.0f}" if math.isfinite(q) else "-" for q in (low, mid, high)]
    return f"{show[1]} ({show[0]}-{show[2]})"


def markdown(table: Table, rows: list[dict], budget: float, best_hv: float, front_size: int, workers: int,
             mark: dict | None = None) -> str:
    lines = [
        f"### {table.name}: {len(table.recorded)} recorded sub-networks x {table.epochs} epochs"
        + (f" (and a surrogate for the rest of {table.space_size():,}"
           + (" switch settings, at any learning-rate scale)" if isinstance(table, ProductTable) else ")")
           if table.surrogate else "")
        + f", {workers} workers",
        "",
        f"Budget {budget:,.0f} trial-seconds each (training every recorded sub-network); target {TARGET:.0%} of the "
        f"best-known front's hypervolume ({best_hv:.4f}, {front_size} points). Median (quartiles) over the seeds; "
        f"driver s: the searcher's and scheduler's own CPU seconds per search (median).",
        "",
        "| strategy | arm | trial-seconds to 95% | trial-epochs to 95% | seeds reaching | HV at 1/4 budget "
        "| HV at 1/2 | HV at end | trials | driver s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['strategy']} | {'presets first' if r['seeded'] else 'unseeded'} | "
                     f"{_fmt(r['seconds_to_95'])} | {_fmt(r['epochs_to_95'])} | {r['reached_95']}/{r['seeds']} | "
                     f"{r['hv_at_quarter']:.3f} | {r['hv_at_half']:.3f} | {r['hv_at_end']:.3f} | {r['trials']:.0f} | "
                     f"{r['driver_seconds']:.1f} |")
    if mark:
        lines += ["", f"Against training the presets alone ({mark['hv']:.3f} of the best-known front's hypervolume "
                  f"after {mark['seconds']:,.0f} trial-seconds): each strategy's hypervolume once it had spent as "
                  "many trial-seconds (median), the seeds whose front was above the presets' then and at the end, and "
                  "the trial-seconds at which its front first passed the presets' (median, quartiles).",
                  "", "| strategy | arm | HV at the presets' trial-seconds | seeds above then | seeds above at end "
                  "| trial-seconds to pass the presets |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            if "hv_at_presets_seconds" in r and r["strategy"] != "presets":
                lines.append(f"| {r['strategy']} | {'presets first' if r['seeded'] else 'unseeded'} | "
                             f"{r['hv_at_presets_seconds']:.3f} | {r['above_presets_at_their_seconds']}/{r['seeds']} | "
                             f"{r['above_presets_at_end']}/{r['seeds']} | "
                             f"{_fmt(r.get('seconds_to_pass_presets', [math.inf] * 3))} |")
    return "\n".join(lines) + "\n"


def plot(table: Table, runs: list[dict], best_hv: float, budget: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    palette = plt.get_cmap("tab20").colors  # 20: the strong ten, then their light pairs (one colour per strategy)
    colors = dict(zip(STRATEGIES, palette[::2] + palette[1::2]))
    grid = np.linspace(0, budget, 200)
    for ax, seeded in zip(axes, (False, True)):
        for strategy in dict.fromkeys(r["strategy"] for r in runs):
            curves = [curve(table, r["events"], best_hv) for r in runs
                      if r["strategy"] == strategy and r["seeded"] == seeded]
            if not curves:
                continue
            sampled = np.array([[hv_at(c, x) for x in grid] for c in curves])
            ax.plot(grid, np.median(sampled, axis=0), label=strategy, color=colors.get(strategy))
            ax.fill_between(grid, *np.percentile(sampled, [25, 75], axis=0), color=colors.get(strategy), alpha=0.12)
        ax.axhline(TARGET, color="grey", lw=0.8, ls=":")
        ax.set_title("presets evaluated first (and protected)" if seeded else "unseeded: no preset knowledge")
        ax.set_xlabel("compute (trial-seconds)")
        ax.set_xscale("symlog", linthresh=budget / 100)
        ax.set_xlim(0, budget)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hypervolume / best-known front's")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{table.name}: median and quartiles over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


_JOB_TABLE: Table | None = None


def code_fingerprint(root: Path = Path(__file__).resolve().parents[1]) -> str:
    """A hash of SEARCH_CODE's files: what a logged search was made with."""
    import hashlib

    digest = hashlib.sha256()
    for name in SEARCH_CODE:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _init_job(path: str, surrogate: bool, model: str | None = None) -> None:
    """A job process: its own copy of the table (and surrogate, fitted with the same seed: the same answers)."""
    global _JOB_TABLE
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _JOB_TABLE = open_table(path, surrogate, model)


def _job(name: str, seed: int, seeded: bool, workers: int, budget: float) -> dict:
    return run_once(_JOB_TABLE, name, STRATEGIES[name], seed, seeded, workers, budget)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="bench/search_efficiency.py", description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="bench/tables/minilm-rotten_tomatoes-modules.parquet")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds-for", default="gp=3",
                        help="fewer seeds for costly strategies, NAME=K,... (default gp=3: the GP sampler's own "
                        "proposals take minutes of driver CPU per search)")
    parser.add_argument("--arms", default="unseeded,seeded", help="unseeded, seeded, or both (default)")
    parser.add_argument("--workers", type=int, default=4, help="trials at once (default 4)")
    parser.add_argument("--budget-seconds", type=float, default=None,
                        help="trial-seconds per search (default: what training the whole table costs)")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--surrogate", action="store_true",
                        help="answer sub-networks the table lacks with bench/surrogate.py's model (a large space)")
    parser.add_argument("--fresh", action="store_true", help="ignore the searches logged by an earlier run")
    parser.add_argument("--model", default=None,
                        help="a product-space table: the model its space is rebuilt from (default: the one its "
                        "metadata names; give this when that path is not on this machine, e.g. minilm)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="searches at once, each in its own process (default 1); each search's driver "
                        "seconds are its own process's CPU time, so give at most one job per core")

    def body() -> int:
        args = parser.parse_args(argv)
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        unknown = [s for s in strategies if s not in STRATEGIES]
        if unknown:
            raise UsageError(f"unknown strategy '{unknown[0]}' (known: {', '.join(STRATEGIES)})")
        if args.seeds < 1 or args.workers < 1 or args.jobs < 1:
            raise UsageError("--seeds, --workers and --jobs must be at least 1")
        try:
            seeds_for = {k.strip(): int(v) for k, v in (p.split("=") for p in args.seeds_for.split(",") if p.strip())}
        except ValueError:
            raise UsageError(f"--seeds-for takes NAME=K,..., not '{args.seeds_for}'") from None
        arms = {a.strip() for a in args.arms.split(",") if a.strip()}
        if not arms or arms - {"unseeded", "seeded"}:
            raise UsageError(f"--arms takes unseeded, seeded or both, not '{args.arms}'")
        table = open_table(args.table, args.surrogate, args.model)
        budget = args.budget_seconds or table.exhaustive_seconds
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"{table.name}.search_efficiency"
        # Each finished search is appended to a log, so an interrupted benchmark continues where it stopped.
        log, setting = Path(f"{stem}.runs.jsonl"), {"table": table.name, "budget": budget, "workers": args.workers}
        done, code, older = {}, code_fingerprint(), set()
        if log.exists() and not args.fresh:
            for line in log.read_text().splitlines():
                record = json.loads(line)
                known = STRATEGIES.get(record["strategy"])  # a strategy since redefined is searched again
                if record.pop("setting") != setting or not known or record.get("definition") != repr(known):
                    continue
                key = (record["strategy"], record["seed"], record["seeded"])
                if record.get("code", code) != code:  # made by other product code: searched again
                    older.add(key)
                    continue
                done[key] = record
        plan = [(name, seed, seeded) for seed in range(args.seeds) for name in strategies
                if seed < seeds_for.get(name, args.seeds)
                for seeded in ((True,) if STRATEGIES[name].presets_only else (False,) if STRATEGIES[name].peer
                               else (False, True))
                if STRATEGIES[name].presets_only or ("seeded" if seeded else "unseeded") in arms]
        found, started = {key: done[key] for key in plan if key in done}, time.perf_counter()
        stale = (older - set(done)) & set(plan)  # logged by other code, with no later search by this code
        if stale:
            print(f"{len(stale)} logged search(es) were made by other code than {', '.join(SEARCH_CODE)} "
                  "now hold: searching them again", flush=True)
        unmarked = sum("code" not in found[key] for key in found)
        if unmarked:
            print(f"{unmarked} logged search(es) predate code fingerprints and are reused (--fresh: search again)",
                  flush=True)

        def keep(key: tuple, run: dict) -> None:
            run = {**run, "code": code}
            found[key] = run
            with log.open("a") as f:
                f.write(json.dumps({"setting": setting, **run}, default=str) + "\n")
            name, seed, seeded = key
            print(f"  [{time.perf_counter() - started:5.0f}s] seed {seed} {name:<18} "
                  f"{'presets first' if seeded else 'unseeded':<13} {len(run['events']):>4} "
                  f"trial-epochs, driver {run['driver_seconds']:.1f}s", flush=True)

        todo = [key for key in plan if key not in found]
        if args.jobs > 1 and len(todo) > 1:  # each search in its own process; the same results in any order
            import concurrent.futures
            import multiprocessing

            with concurrent.futures.ProcessPoolExecutor(
                    min(args.jobs, len(todo)), multiprocessing.get_context("spawn"), _init_job,
                    (args.table, args.surrogate, args.model)) as pool:
                futures = {pool.submit(_job, name, seed, seeded, args.workers, budget): (name, seed, seeded)
                           for name, seed, seeded in todo}
                for future in concurrent.futures.as_completed(futures):
                    keep(futures[future], future.result())
        else:
            for name, seed, seeded in todo:
                keep((name, seed, seeded), run_once(table, name, STRATEGIES[name], seed, seeded, args.workers, budget))
        runs = [found[key] for key in plan]
        best_hv, _ = best_known(table, runs)
        rows = summarise(table, runs, best_hv, budget)
        shares = front_shares(table, runs)
        front_size = len(shares)  # ties counted once
        mark = presets_mark(table, runs, best_hv)
        text = markdown(table, rows, budget, best_hv, front_size, args.workers, mark)
        text += ("\nThe best-known front, and the share of its hypervolume left without each point's sub-network "
                 "(at every scale):\n\n") + "\n".join(
            f"- {p['selection']}{f' (and {t} more scales)' if (t := p.get('ties')) else ''}: {p['metric']:.4f} at "
            f"{p['params']:,} parameters; without it {p['share_left_without']:.3f}" for p in shares) + "\n"
        Path(f"{stem}.md").write_text(text)
        Path(f"{stem}.json").write_text(json.dumps({
            "table": args.table, "budget_seconds": budget, "workers": args.workers, "seeds": args.seeds,
            "reference": table.reference, "best_known_hv": best_hv, "best_known_front_size": front_size,
            "target": TARGET, "summary": rows, "front": shares, "presets_only": mark,
            "runs": [{k: v for k, v in r.items() if k != "events"} | {"events": [
                [e["trial"], e["epoch"], e["metric"], e["params"], e["seconds"]] for e in r["events"]]}
                for r in runs]}, default=str))
        plot(table, runs, best_hv, budget, Path(f"{stem}.png"))
        print("\n" + text)
        print(f"wrote {stem}.md, .json and .png")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
