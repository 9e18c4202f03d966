"""A model's module taxonomy: the units a search can switch on, and exact parameter counts.

A *unit* is the smallest piece the search can make trainable: a module type in one layer
(`"3.query"`), or a non-layer piece (`"embeddings"`, `"embeddings.norm"`, `"pooler"`).
A *reference* names a unit, optionally restricted to a part: `"3.query:bias"` (BitFit) or
`"3.query:weight"`, or adapted instead of trained: `"3.query:lora8"`, a rank-8 LoRA update of each of the
unit's linear layers (spaces._lora). The classification head is always trainable and always counted.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from spaces._cli import UsageError
from spaces._lora import (
    LORA_ALPHA_RATIO,
    has_adapters,
    inject,
    is_conv1d,
    is_linear,
    linear_dims,
    lora_names,
    parse_rank,
    ticket_parameters,
)
from spaces._models import load_config
from spaces._pooling import DECODERS, apply_pooling

# Canonical module types of an encoder layer (the paper's), in the order a transformer layer runs them.
MODULE_TYPES = ("query", "key", "value", "attn.out", "attn.norm", "ffn.in", "ffn.out", "ffn.norm")
# Decoders add two: `attn.qkv`, one fused projection for query, key and value (GPT-2, GPT-NeoX, Phi-3), and
# `ffn.gate`, the gate of a gated FFN (Llama's gate_proj; `ffn.in` is then the up projection). A layer's norms
# are `attn.norm` (those of the attention block, before or after it, and per-head query/key norms) and
# `ffn.norm` (those of the FFN block).
DECODER_MODULE_TYPES = ("query", "key", "value", "attn.qkv", "attn.out", "attn.norm", "ffn.gate", "ffn.in", "ffn.out",
                        "ffn.norm")
NORM_TYPES = ("attn.norm", "ffn.norm")
# `final.norm`: a decoder's norm after its last layer.
EXTRA_UNITS = ("embeddings", "embeddings.norm", "final.norm", "pooler")
NORM_EXTRAS = ("embeddings.norm", "final.norm")
PARTS = ("weight", "bias")


@dataclass(frozen=True)
class ArchMap:
    """Where the canonical pieces live in one architecture, relative to its base model.

    `layers` is the path of the repeated layer list; a `*` in it runs over a list of lists
    (ALBERT's layer groups). `modules` maps each canonical module type to module paths inside one
    layer; `extras` maps non-layer units to module paths in the base model. A path that an
    instance lacks (no pooler, no embedding projection) is skipped.
    """

    layers: str
    modules: dict[str, tuple[str, ...]]
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)


_EMBEDDINGS = (
    "embeddings.word_embeddings",
    "embeddings.position_embeddings",
    "embeddings.token_type_embeddings",
    "embeddings_project",  # ELECTRA, when embedding size != hidden size
    "encoder.embedding_hidden_mapping_in",  # ALBERT's projection from embedding to hidden size
    "encoder.rel_embeddings",  # DeBERTa-v2 relative positions
    "encoder.relative_attention_bias",  # MPNet relative positions
)
_EXTRAS = {
    "embeddings": _EMBEDDINGS,
    "embeddings.norm": ("embeddings.LayerNorm", "encoder.LayerNorm"),  # the latter: DeBERTa-v2's rel-embedding norm
    "pooler": ("pooler.dense", "pooler"),
}
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
    extras=_EXTRAS,
)
_DEBERTA_V2 = ArchMap(
    layers="encoder.layer",
    modules={**_BERT.modules,
             # relative-position projections (when keys are not shared) belong to query and key
             "query": ("attention.self.query_proj", "attention.self.pos_query_proj"),
             "key": ("attention.self.key_proj", "attention.self.pos_key_proj"),
             "value": ("attention.self.value_proj",)},
    extras=_EXTRAS,
)
_MPNET = ArchMap(
    layers="encoder.layer",
    modules={**_BERT.modules, "query": ("attention.attn.q",), "key": ("attention.attn.k",),
             "value": ("attention.attn.v",), "attn.out": ("attention.attn.o",), "attn.norm": ("attention.LayerNorm",)},
    extras=_EXTRAS,
)
_DISTILBERT = ArchMap(
    layers="transformer.layer",
    modules={
        "query": ("attention.q_lin",),
        "key": ("attention.k_lin",),
        "value": ("attention.v_lin",),
        "attn.out": ("attention.out_lin",),
        "attn.norm": ("sa_layer_norm",),
        "ffn.in": ("ffn.lin1",),
        "ffn.out": ("ffn.lin2",),
        "ffn.norm": ("output_layer_norm",),
    },
    extras=_EXTRAS,
)
_ALBERT = ArchMap(
    layers="encoder.albert_layer_groups.*.albert_layers",
    modules={
        "query": ("attention.query",),
        "key": ("attention.key",),
        "value": ("attention.value",),
        "attn.out": ("attention.dense",),
        "attn.norm": ("attention.LayerNorm",),
        "ffn.in": ("ffn",),
        "ffn.out": ("ffn_output",),
        "ffn.norm": ("full_layer_layer_norm",),
    },
    extras=_EXTRAS,
)

_DECODER_EXTRAS: dict[str, tuple[str, ...]] = {"embeddings": ("embed_tokens",), "final.norm": ("norm",)}
_LLAMA = ArchMap(  # Llama and the families that share its layout; biases only where the family has them (Qwen2)
    layers="layers",
    modules={
        "query": ("self_attn.q_proj",),
        "key": ("self_attn.k_proj",),
        "value": ("self_attn.v_proj",),
        "attn.out": ("self_attn.o_proj",),
        # before attention, after it (Gemma2/3, OLMo2), and the per-head query/key norms (Qwen3, Gemma3, OLMo2)
        "attn.norm": ("input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"),
        "ffn.gate": ("mlp.gate_proj",),
        "ffn.in": ("mlp.up_proj",),
        "ffn.out": ("mlp.down_proj",),
        "ffn.norm": ("pre_feedforward_layernorm", "post_feedforward_layernorm"),
    },
    extras=_DECODER_EXTRAS,
)
# Llama's post_attention_layernorm is the norm before its FFN; Gemma2/3 and OLMo2 name their FFN norms apart.
_LLAMA_PRE_NORM = ArchMap(
    layers="layers",
    modules={**_LLAMA.modules, "attn.norm": ("input_layernorm", "self_attn.q_norm", "self_attn.k_norm"),
             "ffn.norm": ("post_attention_layernorm",)},
    extras=_DECODER_EXTRAS,
)
_PHI3 = ArchMap(
    layers="layers",
    modules={"attn.qkv": ("self_attn.qkv_proj",), "attn.out": ("self_attn.o_proj",), "attn.norm": ("input_layernorm",),
             "ffn.in": ("mlp.gate_up_proj",),  # gate and up projections fused in one module
             "ffn.out": ("mlp.down_proj",), "ffn.norm": ("post_attention_layernorm",)},
    extras=_DECODER_EXTRAS,
)
_GPT2_EXTRAS: dict[str, tuple[str, ...]] = {"embeddings": ("wte", "wpe"), "final.norm": ("ln_f",)}
_GPT_NEOX_EXTRAS: dict[str, tuple[str, ...]] = {"embeddings": ("embed_in",), "final.norm": ("final_layer_norm",)}
_GPT2 = ArchMap(
    layers="h",
    modules={"attn.qkv": ("attn.c_attn",), "attn.out": ("attn.c_proj",), "attn.norm": ("ln_1",),
             "ffn.in": ("mlp.c_fc",), "ffn.out": ("mlp.c_proj",), "ffn.norm": ("ln_2",)},
    extras=_GPT2_EXTRAS,
)
_GPT_NEOX = ArchMap(
    layers="layers",
    modules={"attn.qkv": ("attention.query_key_value",), "attn.out": ("attention.dense",),
             "attn.norm": ("input_layernorm",), "ffn.in": ("mlp.dense_h_to_4h",), "ffn.out": ("mlp.dense_4h_to_h",),
             "ffn.norm": ("post_attention_layernorm",)},
    extras=_GPT_NEOX_EXTRAS,
)

# model_type (from config.json) -> map.
ARCHITECTURES: dict[str, ArchMap] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "camembert": _BERT,
    "electra": _BERT,
    "deberta-v2": _DEBERTA_V2,
    "mpnet": _MPNET,
    "distilbert": _DISTILBERT,
    "albert": _ALBERT,
    **{name: _LLAMA_PRE_NORM for name in ("llama", "mistral", "qwen2", "qwen3", "gemma", "olmo", "granite")},
    **{name: _LLAMA for name in ("gemma2", "gemma3_text", "olmo2")},
    "phi3": _PHI3,
    "gpt2": _GPT2,
    "gpt_neox": _GPT_NEOX,
}



@dataclass(frozen=True)
class Unit:
    id: str
    module: str
    layer: int | None
    params: tuple[str, ...]
    # full names of the unit's linear layers, which a LoRA adapter can adapt (a layer's units only)
    linears: tuple[str, ...] = ()

    @property
    def lora_params(self) -> tuple[str, ...]:
        """The names of the LoRA parameters the unit holds when it is adapted (spaces._lora.lora_names)."""
        return tuple(n for m in self.linears for n in lora_names(m))


def _split_ref(ref: str) -> tuple[str, str | None, int | None]:
    """`(unit id, part, rank)`: part None (the whole unit), `weight`, `bias` or `lora` (then with its rank)."""
    unit_id, sep, part = ref.partition(":")
    if not sep:
        return unit_id, None, None
    if part in PARTS:
        return unit_id, part, None
    rank = parse_rank(part)
    if rank is None:
        raise UsageError(f"unknown part '{part}' in '{ref}' (use :weight, :bias or :lora<rank>, e.g. :lora8)")
    if rank < 1:
        raise UsageError(f"LoRA rank must be at least 1, not {rank} ('{ref}')")
    return unit_id, "lora", rank


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or "norm" in type(module).__name__.lower()


def _length(base: nn.Module, path: str) -> int:
    """How many modules the list at `path` holds."""
    listed = base.get_submodule(path)
    if not isinstance(listed, (nn.ModuleList, nn.Sequential)):
        raise UsageError(f"'{path}' in {type(base).__name__} is not a list of layers")
    return len(listed)


def _layer_paths(base: nn.Module, pattern: str) -> list[str]:
    """Paths of the layers matched by `pattern` (one `*` runs over a list of layer lists)."""
    if "*" not in pattern:
        return [f"{pattern}.{i}" for i in range(_length(base, pattern))]
    outer, inner = pattern.split(".*.")
    return [
        f"{outer}.{g}.{inner}.{i}"
        for g in range(_length(base, outer))
        for i in range(_length(base, f"{outer}.{g}.{inner}"))
    ]


def _generic_map(base: nn.Module) -> tuple[list[str], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Discover layers and module types of an unmapped architecture.

    The layers are the largest `ModuleList` of identical blocks; a module type is each module
    with its own parameters inside a block (its path in the block names it, e.g.
    `attention.self.query`). Outside the layers, modules under a path with "embed" become the
    `embeddings` unit (norms among them `embeddings.norm`), and "pooler" the `pooler` unit.
    """
    def size(module):
        return sum(p.numel() for p in module.parameters())

    candidates = [
        (size(mod), path) for path, mod in base.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and len({type(m) for m in mod}) == 1 and size(mod)
    ]
    if not candidates:
        raise UsageError("found no repeated layer list in this model: its units cannot be discovered")
    layer_list_path = max(candidates)[1]
    first = base.get_submodule(f"{layer_list_path}.0")
    modules: dict[str, tuple[str, ...]] = {
        path: (path,) for path, mod in first.named_modules()
        if path and any(True for _ in mod.parameters(recurse=False))
    }
    if not modules:
        raise UsageError(f"the layers at '{layer_list_path}' hold no parameters: nothing to train")
    extras: dict[str, list[str]] = {"embeddings": [], "embeddings.norm": [], "pooler": []}
    for path, mod in base.named_modules():
        if not path or path.startswith(layer_list_path) or not any(True for _ in mod.parameters(recurse=False)):
            continue
        if "embed" in path.lower():
            extras["embeddings.norm" if _is_norm(mod) else "embeddings"].append(path)
        elif "pooler" in path.lower():
            extras["pooler"].append(path)
    layers = [f"{layer_list_path}.{i}" for i in range(_length(base, layer_list_path))]
    return layers, modules, {k: tuple(v) for k, v in extras.items()}


class Taxonomy:
    """The units of one model with a classification head, and every parameter's size.

    Known architectures (see ARCHITECTURES) use the canonical module names; any other encoder
    gets a generic discovery (`generic` is then True, and module types keep the model's own names).
    """

    def __init__(self, model: PreTrainedModel, name: str, pooling: str = "cls"):
        self.name = name
        # how the head is fed (spaces._pooling): part of what the model is; a decoder's own head reads the last token
        self.pooling = "last" if pooling == "cls" and model.config.model_type in DECODERS else pooling
        self.model_type: str = model.config.model_type
        self.decoder = self.model_type in DECODERS  # the head reads the last real token
        self.architecture = type(model).__name__
        self.num_labels = int(model.config.num_labels or 0)
        prefix: str = model.base_model_prefix
        base = getattr(model, prefix)
        # named_parameters() yields a shared tensor once, so shared weights are counted once.
        self.param_numel: dict[str, int] = {n: p.numel() for n, p in model.named_parameters()}

        self.generic = self.model_type not in ARCHITECTURES
        if self.generic:
            layer_paths, modules, extras = _generic_map(base)
            self.layers_path = layer_paths[0].rpartition(".")[0]
            first = base.get_submodule(layer_paths[0])
            self.norm_types = tuple(m for m, (path,) in modules.items() if _is_norm(first.get_submodule(path)))
        else:
            arch = ARCHITECTURES[self.model_type]
            layer_paths, modules, extras = _layer_paths(base, arch.layers), arch.modules, arch.extras
            self.layers_path = arch.layers  # where the layer list lives in the base model (`*`: a list of lists)
            self.norm_types = NORM_TYPES

        def params_under(paths) -> tuple[str, ...]:
            heads = tuple(f"{prefix}.{p}." for p in paths)
            return tuple(n for n in self.param_numel if n.startswith(heads))

        def linears_of(names: tuple[str, ...]) -> tuple[str, ...]:
            modules = dict.fromkeys(n.rpartition(".")[0] for n in names)
            return tuple(m for m in modules if is_linear(model.get_submodule(m)))

        units: list[Unit] = []
        after_layers = ("final.norm", "pooler")  # in model order: what runs after the last layer comes last
        for unit_id, paths in extras.items():
            if unit_id not in after_layers and (names := params_under(paths)):
                units.append(Unit(unit_id, unit_id, None, names))
        for layer, layer_path in enumerate(layer_paths):
            for module, paths in modules.items():
                if names := params_under(f"{layer_path}.{p}" for p in paths):
                    units.append(Unit(f"{layer}.{module}", module, layer, names, linears_of(names)))
        for unit_id in after_layers:
            if names := params_under(extras.get(unit_id, ())):
                units.append(Unit(unit_id, unit_id, None, names))

        self.units = units
        # (in, out) features of every layer a LoRA adapter can adapt, by full module name
        self.linear_dims: dict[str, tuple[int, int]] = {
            m: linear_dims(model.get_submodule(m)) for u in units for m in u.linears}
        # GPT-2's Conv1D layers among them (weights stored (in, out)): PEFT's LoRA adapts them, its BEFT does not
        self._conv1d = frozenset(m for m in self.linear_dims if is_conv1d(model.get_submodule(m)))
        self._order = {n: i for i, n in enumerate(self.param_numel)}
        # where an adapter's parameters go in model order: after its layer's last own parameter
        self._after_layer = {m: max(self._order[n] for n in self.param_numel if n.startswith(m + "."))
                             for m in self.linear_dims}
        self._by_id = {u.id: u for u in units}
        self.num_layers = len(layer_paths)
        # ALBERT applies one layer's weights at every depth: units are shared, counts are not multiplied.
        self.layer_applications = int(getattr(model.config, "num_hidden_layers", self.num_layers))
        self._module_order = tuple(modules)
        in_units = {n for u in units for n in u.params}
        self.head = tuple(n for n in self.param_numel if not n.startswith(prefix + "."))
        self.unassigned = tuple(
            n for n in self.param_numel if n.startswith(prefix + ".") and n not in in_units
        )
        body = sorted((n, tuple(p.shape)) for n, p in model.named_parameters() if n not in self.head)
        self.fingerprint = hashlib.sha256(repr(body).encode()).hexdigest()[:16]

    # -- lookups ---------------------------------------------------------------------------
    @property
    def total_params(self) -> int:
        return sum(self.param_numel.values())

    @property
    def has_biases(self) -> bool:
        """Whether any unit has a bias (BitFit has something to train): not so in Llama, Mistral, Gemma."""
        return any(n.rsplit(".", 1)[-1] == "bias" for u in self.units for n in u.params)

    @property
    def head_params(self) -> int:
        return sum(self.param_numel[n] for n in self.head)

    @property
    def module_types(self) -> tuple[str, ...]:
        present = {u.module for u in self.units if u.layer is not None}
        return tuple(m for m in self._module_order if m in present)

    @property
    def extra_units(self) -> tuple[str, ...]:
        return tuple(u.id for u in self.units if u.layer is None)

    def is_norm(self, unit: Unit) -> bool:
        """Whether a unit is a LayerNorm (a layer's norms, or the embeddings' own): the one definition."""
        return unit.module in self.norm_types or unit.module in NORM_EXTRAS

    @property
    def norm_units(self) -> tuple[str, ...]:
        """Every LayerNorm unit, in model order (the paper's `layernorm` selection)."""
        return tuple(u.id for u in self.units if self.is_norm(u))

    def unit(self, unit_id: str) -> Unit:
        try:
            return self._by_id[unit_id]
        except KeyError:
            raise UsageError(
                f"unknown unit '{unit_id}' for {self.name} "
                f"(units look like '0.query', '{self.num_layers - 1}.ffn.norm', 'embeddings', 'pooler')"
            ) from None

    # -- selections ------------------------------------------------------------------------
    @property
    def lora_units(self) -> tuple[str, ...]:
        """The units a LoRA adapter can adapt: a layer's units with a linear layer."""
        return tuple(u.id for u in self.units if u.linears)

    def conv1d(self, module: str) -> bool:
        """Whether a linear layer (of `linear_dims`) is GPT-2's Conv1D rather than an `nn.Linear`."""
        return module in self._conv1d

    def max_lora_rank(self, unit_id: str) -> int:
        """The largest rank a LoRA adapter of this unit can have: the smallest dimension of its linear layers."""
        return min(min(self.linear_dims[m]) for m in self.unit(unit_id).linears)

    def lora_targets(self, refs) -> dict[str, int]:
        """The LoRA adapters of `refs`: full module name -> rank. UsageError for a unit without a linear layer
        or a rank above the layer's smaller dimension."""
        targets: dict[str, int] = {}
        for ref in refs:
            unit_id, part, rank = _split_ref(ref)
            if part != "lora":
                continue
            unit = self.unit(unit_id)
            if not unit.linears:
                raise UsageError(f"unit '{unit_id}' of {self.name} has no linear layer: it cannot take a LoRA adapter")
            assert rank is not None  # a lora part always has one (_split_ref)
            if rank > self.max_lora_rank(unit_id):
                raise UsageError(f"LoRA rank {rank} of '{unit_id}' is above its layer's smaller dimension "
                                 f"({self.max_lora_rank(unit_id)})")
            targets.update(dict.fromkeys(unit.linears, rank))
        return targets

    def resolve(self, refs) -> list[str]:
        """Parameter names made trainable by `refs`, head included, in model order; a LoRA adapter's two
        parameters (spaces._lora.lora_names) follow its layer's own."""
        refs = list(refs)
        return self._resolve(refs, self.lora_targets(refs))

    def _resolve(self, refs: list, targets: dict[str, int]) -> list[str]:
        chosen = set(self.head)
        for ref in refs:
            unit_id, part, _ = _split_ref(ref)
            if part == "lora":
                continue
            for name in self.unit(unit_id).params:
                is_bias = name.rsplit(".", 1)[-1] == "bias"
                if part is None or (part == "bias") == is_bias:
                    chosen.add(name)
        place = {n: (self._order[n], 0) for n in chosen}
        for module in targets:
            place.update({name: (self._after_layer[module], k) for k, name in enumerate(lora_names(module), 1)})
        return sorted(place, key=place.__getitem__)

    def count(self, refs) -> int:
        """Exact number of trainable parameters (head included) for `refs`: a rank-r LoRA adapter of a linear
        layer adds r x (in + out)."""
        refs = list(refs)
        targets = self.lora_targets(refs)
        lora = sum(rank * sum(self.linear_dims[m]) for m, rank in targets.items())
        return sum(self.param_numel[n] for n in self._resolve(refs, targets) if n in self.param_numel) + lora

    def apply(self, model: nn.Module, refs, lora_alpha_ratio: int = LORA_ALPHA_RATIO) -> list[str]:
        """Make exactly the parameters of `refs` (and the head) trainable; freeze the rest. A LoRA reference's
        adapter is added to `model` first (PEFT's LoRA layers, spaces._lora), unless it has adapters already."""
        refs = list(refs)
        targets = self.lora_targets(refs)
        if targets and not has_adapters(model):
            inject(model, targets, lora_alpha_ratio)
        names = ticket_parameters(model)
        expected = self.param_numel.keys() | {n for m in targets for n in lora_names(m)}
        if names.keys() != expected:
            raise UsageError(f"model does not match the taxonomy of {self.name}")
        trainable = self._resolve(refs, targets)
        keep = set(trainable)
        for name, param in names.items():
            param.requires_grad_(name in keep)
        return trainable


@functools.lru_cache(maxsize=16)
def load_taxonomy(name: str, num_labels: int = 2, pooling: str = "cls") -> Taxonomy:
    """Build the taxonomy of `name` without loading weights (the model lives on the meta device).

    `pooling`: `cls` or `mean` (see spaces._pooling); mean pooling has no BERT-style pooler unit.
    """
    config = load_config(name, num_labels)
    with torch.device("meta"):
        try:
            model = AutoModelForSequenceClassification.from_config(config)
        except ValueError as exc:
            reason = str(exc).splitlines()[0]
            raise UsageError(f"model '{name}' has no sequence-classification form: {reason}") from None
        apply_pooling(model, pooling)
    return Taxonomy(model, name, pooling)
