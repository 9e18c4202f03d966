"""Search spaces over sub-networks: switches, reference presets and an Optuna define-by-run space.

A *switch* is one categorical choice of the search. Its value is `"off"`, `"bias"` (the bias
parts only: BitFit), `"weight"`, `"all"`, or `"lora<rank>"` (a LoRA adapter of that rank on each linear
layer of the switch's units; its norms stay frozen). What a switch covers depends on the granularity:

- `module`: one switch per module type across every layer (`query`, ..., `ffn.norm`), plus
  one per non-layer unit: the paper's module-wise study.
- `layer`: one switch per layer (`layer0`, ...), plus the non-layer units.
- `unit`: one switch per unit (`3.query`, ..., `embeddings`, `pooler`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from spaces._cli import UsageError, did_you_mean
from spaces._lora import parse_rank
from spaces._names import GRANULARITIES, LORA, SWITCH_VALUES, SpaceConfig
from spaces._taxonomy import Taxonomy

# The LoRA reference points' rank: the LoRA paper's (query and value) and PEFT's examples' (all-linear).
PRESET_LORA_RANK = 8


def switches(
    taxonomy: Taxonomy,
    granularity: str,
    modules: tuple[str, ...] | None = None,
    layers: tuple[int, int] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Switch name -> the unit ids it turns on, for one granularity.

    `modules` keeps only these module types and non-layer units (e.g. `("query", "attn.norm",
    "pooler")`); `layers` keeps only layers `first..last` (inclusive). Empty switches are dropped.
    """
    if granularity not in GRANULARITIES:
        raise UsageError(f"unknown granularity '{granularity}' (use one of {', '.join(GRANULARITIES)})")
    known = (*taxonomy.module_types, *taxonomy.extra_units)
    if modules is not None:
        unknown = [m for m in modules if m not in known]
        if unknown:
            raise UsageError(f"unknown module '{unknown[0]}' for {taxonomy.name} (known: {', '.join(known)})"
                             + did_you_mean(unknown[0], known))
    if layers is not None:
        first, last = layers
        if first > last:
            raise UsageError(f"layer range {first}..{last} is empty: its first layer comes after its last "
                             f"(layers count from 0; {taxonomy.name} has 0..{taxonomy.num_layers - 1})")
        if not 0 <= first <= last < taxonomy.num_layers:
            raise UsageError(f"layer range {first}..{last} is outside 0..{taxonomy.num_layers - 1}")

    def kept(unit) -> bool:
        name = unit.module if unit.layer is not None else unit.id
        in_layers = unit.layer is None or layers is None or layers[0] <= unit.layer <= layers[1]
        return in_layers and (modules is None or name in modules)

    layer_units = [u for u in taxonomy.units if u.layer is not None and kept(u)]
    out: dict[str, tuple[str, ...]] = {}
    if granularity == "module":
        for module in taxonomy.module_types:
            out[module] = tuple(u.id for u in layer_units if u.module == module)
    elif granularity == "layer":
        for layer in range(taxonomy.num_layers):
            out[f"layer{layer}"] = tuple(u.id for u in layer_units if u.layer == layer)
    else:
        out.update({u.id: (u.id,) for u in layer_units})
    out.update({u.id: (u.id,) for u in taxonomy.units if u.layer is None and kept(u)})
    out = {name: unit_ids for name, unit_ids in out.items() if unit_ids}
    if not out:
        raise UsageError("the module and layer constraints leave nothing to search")
    return out


def refs_from_switches(switch_units: dict[str, tuple[str, ...]], values: dict[str, str],
                       lora_units=None) -> list[str]:
    """Unit references selected by switch values (missing switches are off). A `lora<rank>` value adapts the
    switch's units that are in `lora_units` (the taxonomy's `lora_units`; None: every unit)."""
    refs: list[str] = []
    for name, unit_ids in switch_units.items():
        value = values.get(name, "off")
        if value not in SWITCH_VALUES or value == LORA:
            if parse_rank(value) is None:
                raise UsageError(f"switch '{name}' has value '{value}' (use one of off, bias, weight, all, "
                                 f"lora<rank>)")
            unit_ids = tuple(u for u in unit_ids if lora_units is None or u in lora_units)
        if value == "off":
            continue
        suffix = "" if value == "all" else f":{value}"
        refs.extend(unit_id + suffix for unit_id in unit_ids)
    unknown = set(values) - set(switch_units) - {"lr_scale", "seed"}
    if unknown:
        raise UsageError(f"unknown switch '{sorted(unknown)[0]}' for this granularity")
    return refs


def reference_lr(trainable_params: int, total_params: int) -> float:
    """Learning rate for a sub-network by its trainable fraction, used for presets and benchmarks.

    Full fine-tuning wants a small rate; the fewer parameters are trained, the larger each step
    must be to move the model. lr = 1e-4 / sqrt(fraction), clipped to [5e-5, 5e-3]: everything
    -> 1e-4, one module type of six layers (~4%) -> 5e-4, all LayerNorms (~0.05%) -> 4.6e-3,
    head only -> 5e-3. Measured on MiniLM / Rotten Tomatoes (768 rows, 3 epochs, linear decay):
    LayerNorms reach 0.70 accuracy at 5e-3 but stay at the majority class at 2.3e-3 and at 1e-2;
    full fine-tuning reaches 0.74 at 1e-4.
    """
    fraction = max(trainable_params / total_params, 1e-12)
    lr = 1e-4 * fraction ** -0.5
    return float(min(max(lr, 5e-5), 5e-3))


def presets(taxonomy: Taxonomy, granularity: str, modules=None, layers=None,
            lora_rank: int | None = None, kappa_units: tuple[str, ...] | None = None) -> dict[str, dict[str, str]]:
    """The paper's reference points as switch values, for the presets a space can express exactly.

    `full`, `head` (everything frozen but the head), `bitfit` (all biases), `layernorm` (every
    LayerNorm), each module type alone, and `layernorm.L`, the LayerNorms of layer L alone (the
    paper's layer-wise analysis; unit granularity). With `lora_rank`, the two LoRA set-ups users start
    from, at that rank: `lora.qv` (query and value, or a fused `attn.qkv`: the LoRA paper's) and
    `lora.all-linear` (every linear layer of every layer: PEFT's `all-linear`), and with `kappa_units` (the units
    PEFT's KappaTune picks: kappa_choice, below), `lora.kappa` at that rank. `beft`: the biases of PEFT's
    BEFT targets (beft_units, below), where the family has them. A preset is left out where
    the granularity or the constraints cannot express it (module types alone at layer granularity; `full`
    when some modules are excluded).
    """
    everything = switches(taxonomy, "unit")  # what each preset means, unit by unit
    switch_units = switches(taxonomy, granularity, modules, layers)
    lora_units = set(taxonomy.lora_units)

    def where(switch_set, predicate, value="all") -> dict[str, str]:
        if parse_rank(value) is not None:  # an adapter preset: judged on the switch's linear units alone
            return {name: value if (linear := [u for u in units if u in lora_units])
                    and all(predicate(taxonomy.unit(u)) for u in linear) else "off"
                    for name, units in switch_set.items()}
        return {
            name: value if all(predicate(taxonomy.unit(u)) for u in units) else "off"
            for name, units in switch_set.items()
        }

    wanted = {
        "full": lambda u: True,
        "head": lambda u: False,
        "bitfit": (lambda u: True, "bias"),
        "layernorm": taxonomy.is_norm,
        **{module: (lambda u, module=module: u.module == module) for module in taxonomy.module_types},
        **{f"layernorm.{layer}": (lambda u, layer=layer: u.layer == layer and taxonomy.is_norm(u))
           for layer in range(taxonomy.num_layers)},
    }
    if lora_rank is not None:
        fused = any(u.module == "attn.qkv" for u in taxonomy.units)
        qv = ("attn.qkv",) if fused else ("query", "value")
        wanted["lora.qv"] = (lambda u: u.module in qv, f"{LORA}{lora_rank}")
        wanted["lora.all-linear"] = (lambda u: True, f"{LORA}{lora_rank}")
        if kappa_units:
            kappa = set(kappa_units)
            wanted["lora.kappa"] = (lambda u: u.id in kappa, f"{LORA}{lora_rank}")
    if beft := set(beft_units(taxonomy)):
        wanted["beft"] = (lambda u: u.id in beft, "bias")
    out = {}
    for name, rule in wanted.items():
        predicate, value = rule if isinstance(rule, tuple) else (rule, "all")
        target = set(refs_from_switches(everything, where(everything, predicate, value), lora_units))
        values = where(switch_units, predicate, value)
        if target and set(refs_from_switches(switch_units, values, lora_units)) == target or name == "head":
            out[name] = values
    return out


def switch_presets(names: list[str]) -> dict[str, frozenset[str]]:
    """The same reference points over named switches (a recorded table's): `head` (none on), `full`
    (all on), each module type alone (a switch `L.kind` is module `kind` of layer L, all layers
    together; a switch without a layer is a module type itself, e.g. `norms` for every LayerNorm),
    and `layernorm.L`, one layer's LayerNorms (`L.norms`) alone."""
    kinds: dict[str, list[str]] = {}
    for name in names:
        layer, _, kind = name.partition(".")
        kinds.setdefault(kind if layer.isdigit() and kind else name, []).append(name)
    out: dict[str, frozenset[str]] = {"head": frozenset()} | {kind: frozenset(group) for kind, group in kinds.items()}
    out |= {f"layernorm.{n.split('.')[0]}": frozenset([n]) for n in names
            if n.endswith(".norms") and n.split(".")[0].isdigit()}
    return out | {"full": frozenset(names)}  # in this order: the cheap ones start first


def _values_of(names: list[str], values) -> dict[str, tuple[str, ...]]:
    """Each switch's values: `values` is one tuple for every switch, or a mapping switch -> its own tuple."""
    return {n: tuple(values[n]) for n in names} if isinstance(values, dict) else {n: tuple(values) for n in names}


def spread_selections(names: list[str], values, cost, k: int, seed: int = 0) -> list[dict[str, str]]:
    """`k` switch settings whose costs (trainable parameters, known before anything trains) spread
    log-uniformly over the space: the cheapest (every switch off), the largest (every switch at its
    last value), then budgets in between, each filled by adding random (switch, value) choices while
    they fit. `cost(values)`: the parameters of a setting. Uses nothing but the costs: a search may
    start from them knowing nothing of which sub-networks are good."""
    import numpy as np

    if k <= 0 or not names:
        return []
    rng = np.random.default_rng(seed)
    cheapest = {n: "off" for n in names}
    offered = _values_of(names, values)
    largest = {n: offered[n][-1] for n in names}
    out = [cheapest, largest][:k]
    low, high = np.log(max(cost(cheapest), 1)), np.log(max(cost(largest), 2))
    on_values = {n: [v for v in offered[n] if v != "off"] for n in names}
    targets = np.exp(low + (high - low) * (np.arange(1, k - 1) - rng.uniform(0, 1, max(k - 2, 0))) / max(k - 2, 1))
    for target in rng.permutation(targets):
        chosen = _fill_to(names, on_values, cost, target, rng)
        if chosen not in out:
            out.append(chosen)
    return out


def _fill_to(names: list[str], on_values: dict[str, list[str]], cost, target: float, rng) -> dict[str, str]:
    """From every switch off, random (switch, value) choices added while the cost stays within `target`."""
    chosen = {n: "off" for n in names}
    for i in rng.permutation(len(names)):
        choices = on_values[names[i]]
        if not choices:
            continue
        trial = {**chosen, names[i]: choices[rng.integers(len(choices))]}
        if cost(trial) <= target:
            chosen = trial
    return chosen


def gap_selection(names: list[str], values, cost, low: float, high: float, rng,
                  tries: int = 20) -> dict[str, str] | None:
    """A random switch setting whose cost lies strictly between `low` and `high` (a gap of a front, in
    trainable parameters): budgets drawn log-uniformly in the gap, each filled as `spread_selections`
    fills its strata. None when `tries` budgets found no setting inside the gap. Uses the costs alone."""
    import numpy as np

    on_values = {n: [v for v in offered if v != "off"] for n, offered in _values_of(names, values).items()}
    if high <= low or not names or not any(on_values.values()):
        return None
    for _ in range(tries):
        target = float(np.exp(rng.uniform(np.log(max(low, 1.0)), np.log(high))))
        chosen = _fill_to(names, on_values, cost, target, rng)
        if low < cost(chosen) < high:
            return chosen
    return None


# Reference points a search keeps first when its trial budget cannot hold them all.
KEEP_FIRST = ("full", "head", "layernorm", "bitfit")
# The reference points a search (`--study search`) trains first: the two ends, the paper's LayerNorms, and the
# answers PEFT's users get without a search (`kappa_choice`, `beft_units`: below). Each module type alone and BitFit,
# the paper's module-wise study, are `--study paper-modules` (and `--study presets`): in a default run of 18 trials
# those points took 9 and seldom stayed on the test front (BitFit below the LayerNorms at 2.5 times their size:
# docs/measurements.md); the search proposes bias mixes itself, and `beft` is the one bias answer users are handed.
SEARCH_REFERENCE_POINTS = ("full", "head", "layernorm", "beft", "lora.qv", "lora.kappa", "lora.all-linear")


def start_points(space, given: dict[str, dict], spread_points: int, num_samples: float, seed: int = 0
                 ) -> dict[str, dict]:
    """A search's first proposals, by name: the `given` points (reference points; `KEEP_FIRST` ones first
    when `num_samples` cannot hold them all), then, where fewer than `spread_points` are given, settings
    spread over parameter budgets (`space.spread_points(k, seed)`: from the parameter counts alone) named
    `spread-1`, ... up to `spread_points`. `space`: a `SubnetworkSpace`, or any space with `spread_points`
    (the benchmark's recorded tables): `python -m search.run` and bench/search_efficiency.py both start here.
    """
    points = dict(given)
    if len(points) > num_samples:
        points = {k: v for k, v in points.items() if k in KEEP_FIRST} | {
            k: v for k, v in points.items() if k not in KEEP_FIRST}
        points = dict(list(points.items())[: int(num_samples)])
    wanted = min(spread_points, num_samples)
    if len(points) < wanted:
        # The first proposals cover the cost axis (known before training): the cheapest sub-network anchors
        # every front's cheap end, and a few budgets in between beat random startup trials (docs/measurements.md).
        spread = [p for p in space.spread_points(spread_points, seed) if p not in points.values()]
        points |= {f"spread-{i}": p for i, p in enumerate(spread[: int(wanted) - len(points)], 1)}
    return points


def describe_switches(values: dict[str, str]) -> str:
    """A short human description of switch values: `"query, ffn.norm:bias"`, or `"head only"`."""
    on = [name + ("" if v == "all" else f":{v}") for name, v in values.items() if v != "off"]
    return ", ".join(on) if on else "head only"


def _values_key(values: dict[str, str]) -> tuple:
    return tuple(sorted(values.items()))


def _check_ranks(ranks, taxonomy: Taxonomy, unit_ids: list[str]) -> tuple[int, ...]:
    """The LoRA ranks on offer, sorted; UsageError for none, a rank below 1, or one above the smaller dimension
    of a searched linear layer (an adapter cannot have more rank than its layer)."""
    ranks = tuple(sorted(set(int(r) for r in ranks)))
    if not ranks:
        raise UsageError("--lora-ranks names no rank")
    if ranks[0] < 1:
        raise UsageError(f"LoRA ranks must be at least 1 (got {ranks[0]})")
    if unit_ids:
        narrowest = min(unit_ids, key=taxonomy.max_lora_rank)
        if ranks[-1] > taxonomy.max_lora_rank(narrowest):
            raise UsageError(f"LoRA rank {ranks[-1]} is above the smaller dimension of {narrowest}'s linear layer "
                             f"({taxonomy.max_lora_rank(narrowest)}): use --lora-ranks of at most that")
    return ranks


class SubnetworkSpace:
    """An Optuna define-by-run space over sub-networks of one model.

    A module-level class (not a closure) because Ray pickles the space. Calling it on an Optuna
    trial suggests every switch and the learning rate, and returns the constants a trial needs:
    the unit references, their exact trainable-parameter count, a readable selection, and the
    name of the reference point (preset) it is, if any.

    With `max_params`, a suggestion over the budget is repaired deterministically: the switch
    that costs the most parameters is turned off until the selection fits. The objective seen by
    the sampler stays a fixed function of its parameters, and nothing over budget is trained.
    """

    def __init__(self, taxonomy: Taxonomy, config: SpaceConfig = SpaceConfig()):
        bad = [v for v in config.values if v not in SWITCH_VALUES]
        if bad:
            raise UsageError(f"unknown switch value '{bad[0]}' (use {', '.join(SWITCH_VALUES)}; lora takes its ranks "
                             f"from --lora-ranks){did_you_mean(bad[0], SWITCH_VALUES)}")
        if "off" not in config.values:
            raise UsageError(f"switch values must include 'off' (got {','.join(config.values)})")
        if not 0 < config.lr_scale_min <= 1 <= config.lr_scale_max:
            raise UsageError("learning-rate scale range must satisfy 0 < lr_scale_min <= 1 <= lr_scale_max")
        if config.max_params is not None and config.max_params < taxonomy.head_params:
            raise UsageError(
                f"--max-params {config.max_params:,} is below the head alone ({taxonomy.head_params:,} params)"
            )
        self.taxonomy = taxonomy
        self.config = config
        self.switch_units = switches(taxonomy, config.granularity, config.modules, config.layers)
        # A part value (`bias`, `weight`) only where the switch's units have biases: on a bias-free module `bias`
        # would train nothing and `weight` would be `all` again (Llama, Mistral, Gemma: no biases at all).
        with_bias = {name: any(p.rsplit(".", 1)[-1] == "bias" for u in unit_ids for p in taxonomy.unit(u).params)
                     for name, unit_ids in self.switch_units.items()}
        parts = [v for v in config.values if v in ("bias", "weight")]
        if parts and config.explicit_values and not any(with_bias.values()):
            raise UsageError(f"--switch-values asks for '{parts[0]}', but {taxonomy.name} ({taxonomy.model_type}) has "
                             f"no biases in the switches searched: use off,all")
        plain = {name: tuple(v for v in config.values if with_bias[name] or v not in ("bias", "weight"))
                 for name in self.switch_units}
        self.lora_units = frozenset(taxonomy.lora_units)
        self._lora_rank: int | None = None
        lora_values: dict[str, tuple[str, ...]] = {name: () for name in self.switch_units}
        if LORA in config.values:
            with_linear = [name for name, unit_ids in self.switch_units.items()
                           if any(u in self.lora_units for u in unit_ids)]
            if not with_linear and config.explicit_values:
                raise UsageError(f"--switch-values asks for 'lora', but no searched switch of {taxonomy.name} has a "
                                 f"linear layer to adapt ({', '.join(list(self.switch_units)[:4])}"
                                 f"{', ...' if len(self.switch_units) > 4 else ''})")
            adapted = {name: [u for u in self.switch_units[name] if u in self.lora_units] for name in with_linear}
            # the user's ranks must fit every searched layer; the default's are left out where they do not fit
            # (a small model's narrow key projection), as `bias` is on a bias-free switch
            ranks = _check_ranks(config.lora_ranks, taxonomy,
                                 [u for ids in adapted.values() for u in ids] if config.explicit_ranks else [])
            fits = {name: tuple(r for r in ranks if r <= min(taxonomy.max_lora_rank(u) for u in ids))
                    for name, ids in adapted.items()}
            fits = {name: fit for name, fit in fits.items() if fit}
            lora_values.update({name: tuple(f"{LORA}{r}" for r in fit) for name, fit in fits.items()})
            if fits:  # the presets' rank: the one nearest 8 of those every adapted switch offers
                common = [r for r in ranks if all(r in fit for fit in fits.values())] or list(ranks)
                self._lora_rank = min(common, key=lambda r: (abs(r - PRESET_LORA_RANK), r))
        # the part values, then the adapters, then `all`: a switch's last value is its largest (spread_selections)
        self.values_of = {name: (*(v for v in plain[name] if v not in (LORA, "all")), *lora_values[name],
                                 *(("all",) if "all" in plain[name] else ()))
                          for name in self.switch_units}
        self._preset_of = {_values_key(values): name for name, values in self._presets().items()}

    def _presets(self) -> dict[str, dict[str, str]]:
        """The paper's presets in this space's switch values: a part value becomes `off` (bias) or `all` (weight)
        on a bias-free switch, what it trains there; a preset that then repeats an earlier one is left out
        (BitFit on a model without biases is the head alone)."""
        config, out, seen = self.config, {}, set()
        for name, values in presets(self.taxonomy, config.granularity, config.modules, config.layers,
                                    self._lora_rank, getattr(config, "kappa_units", None)).items():
            values = {n: v if v in ("off", "all") or v in self.values_of[n] else ("all" if v == "weight" else "off")
                      for n, v in values.items()}
            if _values_key(values) not in seen:
                seen.add(_values_key(values))
                out[name] = values
        return out

    def refs(self, values: dict[str, str]) -> list[str]:
        """The unit references these switch values select (`refs_from_switches` on this space)."""
        return refs_from_switches(self.switch_units, values, self.lora_units)

    def fit_budget(self, values: dict[str, str]) -> dict[str, str]:
        """Switch values within `max_params`: the costliest switch goes off until the selection fits."""
        values = dict(values)
        budget = self.config.max_params
        if budget is None:
            return values
        while self.taxonomy.count(self.refs(values)) > budget:
            def saving(name):
                without = {**values, name: "off"}
                return -self.taxonomy.count(self.refs(without))

            on = [name for name, v in values.items() if v != "off" and name in self.switch_units]
            values[max(on, key=saving)] = "off"
        return values

    def __call__(self, trial) -> dict:
        values = {name: trial.suggest_categorical(name, list(self.values_of[name])) for name in self.switch_units}
        scale = trial.suggest_float("lr_scale", self.config.lr_scale_min, self.config.lr_scale_max, log=True)
        out = self.proposal(values, scale)
        if self.config.seeds > 1:
            out["seed"] = trial.suggest_int("seed", 0, self.config.seeds - 1)
        return out

    def proposal(self, values: dict[str, str], scale: float) -> dict:
        """What a trial is given for these switch values (within `max_params`) at this learning-rate scale."""
        values = self.fit_budget(values)
        refs = self.refs(values)
        trainable_params = self.taxonomy.count(refs)
        return {
            "units": refs,
            "trainable_params": trainable_params,
            "lr": scale * reference_lr(trainable_params, self.taxonomy.total_params),
            "lr_scale": scale,  # the trial's other parameter groups scale with it too (trainables)
            "selection": describe_switches(values),
            "preset": self._preset_of.get(_values_key(values)),
        }

    def size(self) -> int:
        """Number of distinct switch settings (learning rate aside)."""
        return math.prod(len(values) for values in self.values_of.values())

    def spread_points(self, k: int, seed: int = 0) -> list[dict]:
        """`k` settings spread over parameter budgets (`spread_selections`), learning-rate scale 1; within
        `max_params`. Chosen from the parameter counts alone."""
        def cost(values: dict[str, str]) -> int:
            return self.taxonomy.count(self.refs(self.fit_budget(values)))

        points = spread_selections(list(self.switch_units), self.values_of, cost, k, seed)
        return [{**self.fit_budget(values), "lr_scale": 1.0} for values in points]

    def gap_point(self, low: float, high: float, rng) -> dict | None:
        """A setting with trainable parameters strictly between `low` and `high` (`gap_selection`), within
        `max_params`, learning-rate scale left to the sampler; None if none was found."""
        def cost(values: dict[str, str]) -> int:
            return self.taxonomy.count(self.refs(self.fit_budget(values)))

        values = gap_selection(list(self.switch_units), self.values_of, cost, low, high, rng)
        return None if values is None else self.fit_budget(values)

    def seed_points(self) -> dict[str, dict]:
        """Presets as points to evaluate: switch values, learning rate `reference_lr` (scale 1).

        Left out: a preset that uses a switch value the space does not offer (Optuna rejects
        values outside a distribution), or one over the parameter budget.
        """
        out = {}
        config = self.config
        for name, values in self._presets().items():
            if not all(v in self.values_of[n] for n, v in values.items()):
                continue
            n = self.taxonomy.count(self.refs(values))
            if config.max_params is not None and n > config.max_params:
                continue
            out[name] = {**values, "lr_scale": 1.0}
        return out


# ---- the answers PEFT gives for free ----------------------------------------------------------
# The answers HF PEFT gives its users for free, as units of a model: KappaTune's LoRA targets, BEFT's bias targets.
#
# A user who fine-tunes with PEFT need not search: `target_modules="all-linear"` (PEFT's docs), LoRA on query and
# value (the LoRA paper's), KappaTune (`peft.helpers.find_kappa_target_modules`, PEFT 0.20: the linear layers whose
# pre-trained weights have the lowest condition numbers, no training) and BEFT (`peft.BeftConfig`, PEFT 0.20: the
# biases of the value projections). The search must beat them at their size to be worth its trainings, so they are
# reference points of every search (spaces._space.presets) and a run compares its tickets with them.
#
# Mapping PEFT's choice onto units (KappaTune):
# - PEFT is called as its users call it: on the sequence-classification model with its pre-trained weights and
#   PEFT's default `top_p` (0.2). The new head is among the candidates (its random weights are drawn with a fixed
#   seed, so the choice is the same every time); it trains in every ticket anyway, so it is not a unit.
# - A unit joins when KappaTune picks any of its linear layers (every family here has one linear layer a unit, or
#   one fused `attn.qkv`, which KappaTune ranks as one matrix).
# - A pick no unit can adapt (a BERT pooler's dense layer: the pooler is a unit trained whole, not adapted; an MoE
#   model's fused expert tensors, PEFT's `target_parameters`) is left out and named (`KappaChoice.left_out`), so a
#   plan says what the reference point differs from PEFT's own adapter in.

KAPPA_TOP_P = 0.2  # PEFT's default for find_kappa_target_modules: the best fifth of the linear layers
_HEAD_SEED = 0  # the new head's random weights when KappaTune ranks it (it is a candidate, as for PEFT's users)


@dataclass(frozen=True)
class KappaChoice:
    """KappaTune's targets on a model: the units they adapt, and what PEFT picked that no unit can adapt."""

    units: tuple[str, ...]  # unit ids, in model order
    modules: tuple[str, ...]  # PEFT's target_modules, as it returned them (the head's among them, if picked)
    left_out: tuple[str, ...] = ()  # picks no unit adapts (the head aside), and PEFT's target_parameters


def kappa_units(taxonomy: Taxonomy, modules: list[str], parameters: list[str] | None = None) -> KappaChoice:
    """`modules` (KappaTune's target_modules on `taxonomy`'s model, full names) as units of `taxonomy`."""
    unit_of = {linear: u.id for u in taxonomy.units for linear in u.linears}
    head = {name.rpartition(".")[0] for name in taxonomy.head}
    chosen = {unit_of[m] for m in modules if m in unit_of}
    left_out = [m for m in modules if m not in unit_of and m not in head] + list(parameters or ())
    return KappaChoice(units=tuple(u.id for u in taxonomy.units if u.id in chosen), modules=tuple(modules),
                       left_out=tuple(left_out))


@functools.lru_cache(maxsize=8)
def kappa_choice(name: str, num_labels: int = 2, pooling: str = "cls") -> KappaChoice:
    """PEFT's KappaTune choice (`find_kappa_target_modules(model, top_p=0.2)`) on model `name` with a `num_labels`
    head pooled as `pooling`, as units. Loads the pre-trained weights (the condition numbers are theirs)."""
    import warnings

    import torch
    from peft.helpers import find_kappa_target_modules
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from spaces._models import load_config, resolve_model
    from spaces._pooling import apply_pooling
    from spaces._taxonomy import load_taxonomy

    taxonomy = load_taxonomy(name, num_labels, pooling)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": the head, as expected
    hf_logging.disable_progress_bar()
    try:
        with torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(_HEAD_SEED)
            model = AutoModelForSequenceClassification.from_pretrained(
                resolve_model(name), config=load_config(name, num_labels))
            apply_pooling(model, taxonomy.pooling)
            found = find_kappa_target_modules(model, top_p=KAPPA_TOP_P, show_progress=False)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return kappa_units(taxonomy, list(found["target_modules"] or ()), found.get("target_parameters"))


def beft_targets(model_type: str) -> tuple[str, ...]:
    """PEFT's BEFT target modules for a family (`value` on BERT and RoBERTa, `v_proj` on Llama), () if it has none."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_BEFT_TARGET_MODULES_MAPPING

    return tuple(TRANSFORMERS_MODELS_TO_BEFT_TARGET_MODULES_MAPPING.get(model_type, ()))


def beft_units(taxonomy: Taxonomy) -> tuple[str, ...]:
    """The units whose biases BEFT trains on this family: each a linear layer PEFT's BEFT targets (matched as PEFT
    matches, by the name's last parts) that has a bias. Empty where the family has no BEFT targets, or they have
    no bias (Llama's `v_proj`: BEFT would add a bias the model does not have, which no unit can express)."""
    targets = beft_targets(taxonomy.model_type)
    if not targets:
        return ()

    def targeted(linear: str) -> bool:
        return any(linear == t or linear.endswith("." + t) for t in targets)

    return tuple(u.id for u in taxonomy.units
                 if u.linears and all(targeted(m) for m in u.linears)
                 and all(f"{m}.bias" in taxonomy.param_numel for m in u.linears))
