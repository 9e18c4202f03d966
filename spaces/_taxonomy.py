"""A model's module taxonomy: the units a search can switch on, and exact parameter counts.

A *unit* is the smallest piece the search can make trainable: a module type in one layer
(`"3.query"`), or a non-layer piece (`"embeddings"`, `"embeddings.norm"`, `"pooler"`).
A *reference* names a unit, optionally restricted to a part: `"3.query:bias"` (BitFit) or
`"3.query:weight"`. The classification head is always trainable and always counted.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from spaces._errors import UsageError
from spaces._models import load_config

# Canonical module types, in the order a transformer layer runs them.
MODULE_TYPES = ("query", "key", "value", "attn.out", "attn.norm", "ffn.in", "ffn.out", "ffn.norm")
NORM_TYPES = ("attn.norm", "ffn.norm")
EXTRA_UNITS = ("embeddings", "embeddings.norm", "pooler")
PARTS = ("weight", "bias")


@dataclass(frozen=True)
class ArchMap:
    """Where the canonical pieces live in one architecture, relative to its base model.

    `layers` is the path of the repeated layer list; `modules` maps each canonical module type to
    module paths inside one layer; `extras` maps non-layer units to module paths in the base model.
    A path that an instance lacks (no pooler, no embedding projection) is skipped.
    """

    layers: str
    modules: dict[str, tuple[str, ...]]
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)


_BERT = ArchMap(
    layers="encoder.layer",
    modules={
        "query": ("attention.self.query",),
        "key": ("attention.self.key",),
        "value": ("attention.self.value",),
        "attn.out": ("attention.output.dense",),
        "attn.norm": ("attention.output.LayerNorm",),
        "ffn.in": ("intermediate.dense",),
        "ffn.out": ("output.dense",),
        "ffn.norm": ("output.LayerNorm",),
    },
    extras={
        "embeddings": (
            "embeddings.word_embeddings",
            "embeddings.position_embeddings",
            "embeddings.token_type_embeddings",
            "embeddings_project",  # ELECTRA, when embedding size != hidden size
        ),
        "embeddings.norm": ("embeddings.LayerNorm",),
        "pooler": ("pooler.dense",),
    },
)

# model_type (from config.json) -> map. These share BERT's module names.
ARCHITECTURES: dict[str, ArchMap] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "camembert": _BERT,
    "electra": _BERT,
}


@dataclass(frozen=True)
class Unit:
    id: str
    module: str
    layer: int | None
    params: tuple[str, ...]


def _split_ref(ref: str) -> tuple[str, str | None]:
    unit_id, sep, part = ref.partition(":")
    if sep and part not in PARTS:
        raise UsageError(f"unknown part '{part}' in '{ref}' (use :weight or :bias)")
    return unit_id, (part or None)


class Taxonomy:
    """The units of one model with a classification head, and every parameter's size."""

    def __init__(self, model: nn.Module, name: str):
        model_type = model.config.model_type
        if model_type not in ARCHITECTURES:
            known = ", ".join(sorted(ARCHITECTURES))
            raise UsageError(f"no module map for model type '{model_type}' (known: {known})")
        arch = ARCHITECTURES[model_type]
        prefix = model.base_model_prefix
        base = getattr(model, prefix)

        self.name = name
        self.model_type = model_type
        self.architecture = type(model).__name__
        self.num_labels = model.config.num_labels
        # named_parameters() yields a shared tensor once, so shared weights are counted once.
        self.param_numel: dict[str, int] = {n: p.numel() for n, p in model.named_parameters()}
        self._shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}

        def params_under(paths: tuple[str, ...]) -> tuple[str, ...]:
            heads = tuple(f"{prefix}.{p}." for p in paths)
            return tuple(n for n in self.param_numel if n.startswith(heads))

        units: list[Unit] = []
        for unit_id, paths in arch.extras.items():
            if unit_id != "pooler" and (names := params_under(paths)):
                units.append(Unit(unit_id, unit_id, None, names))
        layer_list = base.get_submodule(arch.layers)
        for layer in range(len(layer_list)):
            for module, paths in arch.modules.items():
                names = params_under(tuple(f"{arch.layers}.{layer}.{p}" for p in paths))
                if names:
                    units.append(Unit(f"{layer}.{module}", module, layer, names))
        if names := params_under(arch.extras.get("pooler", ())):
            units.append(Unit("pooler", "pooler", None, names))

        self.units = units
        self._by_id = {u.id: u for u in units}
        self.num_layers = len(layer_list)
        in_units = {n for u in units for n in u.params}
        self.head = tuple(n for n in self.param_numel if not n.startswith(prefix + "."))
        self.unassigned = tuple(
            n for n in self.param_numel if n.startswith(prefix + ".") and n not in in_units
        )
        body = sorted((n, self._shapes[n]) for n in self.param_numel if n not in self.head)
        self.fingerprint = hashlib.sha256(repr(body).encode()).hexdigest()[:16]

    # -- lookups ---------------------------------------------------------------------------
    @property
    def total_params(self) -> int:
        return sum(self.param_numel.values())

    @property
    def head_params(self) -> int:
        return sum(self.param_numel[n] for n in self.head)

    @property
    def module_types(self) -> tuple[str, ...]:
        present = {u.module for u in self.units if u.layer is not None}
        return tuple(m for m in MODULE_TYPES if m in present)

    @property
    def extra_units(self) -> tuple[str, ...]:
        return tuple(u.id for u in self.units if u.layer is None)

    def unit(self, unit_id: str) -> Unit:
        try:
            return self._by_id[unit_id]
        except KeyError:
            raise UsageError(
                f"unknown unit '{unit_id}' for {self.name} "
                f"(units look like '0.query', '{self.num_layers - 1}.ffn.norm', 'embeddings', 'pooler')"
            ) from None

    # -- selections ------------------------------------------------------------------------
    def resolve(self, refs) -> list[str]:
        """Parameter names made trainable by `refs`, head included, in model order."""
        chosen = set(self.head)
        for ref in refs:
            unit_id, part = _split_ref(ref)
            for name in self.unit(unit_id).params:
                is_bias = name.rsplit(".", 1)[-1] == "bias"
                if part is None or (part == "bias") == is_bias:
                    chosen.add(name)
        return [n for n in self.param_numel if n in chosen]

    def count(self, refs) -> int:
        """Exact number of trainable parameters (head included) for `refs`."""
        return sum(self.param_numel[n] for n in self.resolve(refs))

    def apply(self, model: nn.Module, refs) -> list[str]:
        """Make exactly the parameters of `refs` (and the head) trainable; freeze the rest."""
        names = dict(model.named_parameters())
        if names.keys() != self.param_numel.keys():
            raise UsageError(f"model does not match the taxonomy of {self.name}")
        trainable = self.resolve(refs)
        keep = set(trainable)
        for name, param in names.items():
            param.requires_grad_(name in keep)
        return trainable


@functools.lru_cache(maxsize=16)
def load_taxonomy(name: str, num_labels: int = 2) -> Taxonomy:
    """Build the taxonomy of `name` without loading weights (the model lives on the meta device)."""
    config = load_config(name, num_labels)
    with torch.device("meta"):
        try:
            model = AutoModelForSequenceClassification.from_config(config)
        except ValueError as exc:
            raise UsageError(f"model '{name}' has no sequence-classification form: {exc}") from exc
    return Taxonomy(model, name)
