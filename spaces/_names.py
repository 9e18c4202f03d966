"""The names the command lines offer, and what a search may choose (`SpaceConfig`), with their defaults.

The standard library only: a driver reads its options before torch or transformers loads (search.driver.hub).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "minilm"
MODEL_ALIASES = ("minilm",)  # names spaces.resolve_model knows without the hub (a packaged model)
POOLINGS = ("auto", "cls", "mean", "last")
LEGACY_POOLING = "cls"  # what a spec (or run) written before pooling was recorded pooled with
GRANULARITIES = ("module", "layer", "unit")
LORA = "lora"  # the switch value; a unit reference's part is `lora<rank>`
# whole modules and biases, no LoRA: the default space, the paper's studies', and the benchmarks' tables'
WITHOUT_LORA = ("off", "bias", "all")
SWITCH_VALUES = ("off", "bias", "weight", "all", LORA)  # `lora` stands for `lora<rank>`, one per offered rank


def is_local(name: str) -> bool:
    """True when `name` is an alias or names a folder, rather than a hub id (`org/model` or `model`)."""
    return (name in MODEL_ALIASES or name.startswith((".", "/", "~")) or name.count("/") > 1
            or Path(name).expanduser().exists())


def names_folder(name: str) -> bool:
    """True when `name` is a path (a folder on this machine, or meant to be one), not an alias or a hub id: only
    then can a missing folder be an error."""
    return name not in MODEL_ALIASES and is_local(name)


@dataclass(frozen=True)
class SpaceConfig:
    """What a search may choose.

    `values` are the switch values on offer (`"off"` is always one). The default adds `"bias"` to on/off so
    BitFit-style selections are reachable. `"lora"` (an HF PEFT LoRA adapter at each of `lora_ranks`, and PEFT's
    LoRA answers as reference points) is offered, not default: on three tasks x 3 seeds the default run without it
    returned a test front at least as good as with it in 7 of 9 pairs (3 of 3 on two tasks), and its cheap
    bias-and-norm tickets scored at least PEFT's KappaTune LoRA at no more parameters in 8 of 9 (docs/measurements.md,
    "LoRA in the default space, on three tasks"); `"weight"` is rarely worth the extra choices.
    The learning rate is searched relative to the sub-network's size: `lr_scale`, log-uniform in
    [lr_scale_min, lr_scale_max], multiplies `reference_lr` of the proposed selection. A plain
    log-uniform rate over [1e-5, 1e-2] wastes most proposals (a LayerNorm-only sub-network does
    not move at 2e-5; full fine-tuning diverges at 1e-2). The default [1, 3] gave the highest
    mean final metric of the ranges tried on two tasks (docs/measurements.md, "The learning rate and the
    first rung"). `modules` and `layers`
    restrict what can be switched on; `max_params` caps the trainable parameters (head included)
    of every proposed sub-network.
    """

    granularity: str = "module"
    values: tuple[str, ...] = WITHOUT_LORA  # search.run's --switch-values default
    lr_scale_min: float = 1.0
    lr_scale_max: float = 3.0
    modules: tuple[str, ...] | None = None
    layers: tuple[int, int] | None = None
    max_params: int | None = None
    seeds: int = 1  # > 1: the training seed is a choice too (studies repeat each point over seeds)
    # with `lora` among `values`: the ranks a switch's adapter may have, each its own switch value (`lora8`)
    lora_ranks: tuple[int, ...] = (2, 8, 32)
    # True when the user named `lora_ranks` (--lora-ranks): a rank above a searched layer's smaller dimension is
    # then refused, where the default's are left out of the switches whose layers they do not fit
    explicit_ranks: bool = False
    # True when the user named `values` (--switch-values): a part value no switch can take is then refused,
    # where the default's is left out of the space (a bias-free decoder offers off/all)
    explicit_values: bool = False
    # the units PEFT's KappaTune picks on this model (spaces.kappa_choice), for the `lora.kappa` reference
    # point; None: not known (the point is left out)
    kappa_units: tuple[str, ...] | None = None
