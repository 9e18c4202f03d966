"""Mean pooling for any Hugging Face encoder classifier, in one file that travels with an exported model.

This file is the one place the mean-pooling head is written. ticketsearch uses it in training
(`spaces._pooling.apply_pooling`), and `python -m search.export --save-model` copies it unchanged into
the exported folder as `modeling_ticketsearch.py`, named by `auto_map` in the folder's `config.json`, so

    AutoModelForSequenceClassification.from_pretrained(FOLDER, trust_remote_code=True)

builds the same model the search trained, with no ticketsearch installed. It imports only torch and
transformers.

How the head works: the architecture's own classifier reads the first token's state. A hook on the last
layer (on the encoder, where the layers are shared, as ALBERT's) writes the masked mean of the last layer's
token states into position 0, and a hook on the base model keeps the batch's attention mask for it. A
BERT-style pooler (dense + tanh, ALBERT's too) is removed: it was trained, if at all, for the first token.

The classes: `MeanPooled<Architecture>` (for example `MeanPooledBertForSequenceClassification`) and its
config `MeanPooled<Config>` are made on first access from the transformers class of that name. The
config's `model_type` is `ticketsearch-mean-<model_type>`, which no plain transformers class claims:
loading the folder without `trust_remote_code=True` fails with transformers' own message, instead of
silently giving the architecture's first-token head (a different, untrained model).
"""

from __future__ import annotations

import torch
import transformers
from torch import nn

PREFIX = "MeanPooled"
MODEL_TYPE_PREFIX = "ticketsearch-mean-"
POOLING_MARK = "_ticketsearch_pooling"


class _FirstToken(nn.Module):
    """Stands in for a BERT-style pooler under mean pooling: passes the pooled vector on unchanged."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 0]


def _last_layer(base: nn.Module) -> tuple[nn.Module, int]:
    """The last block of the base model's largest list of identical blocks (its layer stack), and how many
    blocks that list holds."""
    lists = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) and len({type(x) for x in m}) == 1]
    if not lists:
        raise ValueError(f"mean pooling needs a layer stack; {type(base).__name__} has none")
    layers = max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))
    last = layers[-1]
    return (last[-1] if isinstance(last, nn.ModuleList) else last), len(layers)


def last_states(base: nn.Module) -> nn.Module:
    """The module whose output is the sequence's last hidden states: the last block of the layer stack
    (ticketsearch's frozen-prefix cache relies on this: a cache of the layers below it never runs it),
    unless the blocks are shared, as ALBERT runs one layer 12 times and a hook on it would fire at every
    depth; then the encoder that runs them all."""
    last, blocks = _last_layer(base)
    if blocks >= getattr(getattr(base, "config", None), "num_hidden_layers", blocks):
        return last
    for name in ("encoder", "transformer"):
        stack = getattr(base, name, None)
        if isinstance(stack, nn.Module) and any(m is last for m in stack.modules()):
            return stack
    raise ValueError(f"mean pooling: {type(base).__name__} shares its layers and has no encoder to pool after")


def add_mean_pooling(model: transformers.PreTrainedModel) -> transformers.PreTrainedModel:
    """Make `model` (a ...ForSequenceClassification) classify the mean of its last layer's tokens; in place,
    once (a second call changes nothing)."""
    base = getattr(model, model.base_model_prefix)
    if getattr(base, POOLING_MARK, None) == "mean":
        return model
    pooler = getattr(base, "pooler", None)
    if isinstance(pooler, nn.Module) and hasattr(pooler, "dense"):  # BERT-style: dense + tanh on the first token
        base.pooler = _FirstToken()
    elif isinstance(pooler, nn.Linear) and hasattr(base, "pooler_activation"):  # ALBERT: the same, as two modules
        base.pooler, base.pooler_activation = nn.Identity(), nn.Identity()
    mask: dict[str, torch.Tensor | None] = {"value": None}

    def keep_mask(module, args, kwargs):
        value = kwargs.get("attention_mask")
        if value is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
            value = args[1]
        mask["value"] = value

    def mean_into_first(module, args, output):
        states = output if isinstance(output, torch.Tensor) else output[0]  # a tensor, tuple or ModelOutput
        attention = mask["value"]
        if attention is None or attention.shape[:2] != states.shape[:2]:
            weights = torch.ones(states.shape[:2], device=states.device, dtype=states.dtype)
        else:
            weights = attention.to(states.dtype)
        mean = (states * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp(min=1.0)
        pooled = torch.cat([mean[:, None, :], states[:, 1:]], dim=1)
        if isinstance(output, torch.Tensor):
            return pooled
        if isinstance(output, tuple):
            return (pooled, *output[1:])
        key = next(iter(output.keys()))
        output[key] = pooled
        return output

    base.register_forward_pre_hook(keep_mask, with_kwargs=True)
    last_states(base).register_forward_hook(mean_into_first)
    setattr(base, POOLING_MARK, "mean")
    return model


_MADE: dict[str, type] = {}


def _mean_pooled_class(name: str) -> type:
    """`MeanPooled<X>` for a transformers config or model class X, made once."""
    if name in _MADE:
        return _MADE[name]
    original = getattr(transformers, name[len(PREFIX):], None)
    if isinstance(original, type) and issubclass(original, transformers.PretrainedConfig):
        made = type(name, (original,), {"model_type": MODEL_TYPE_PREFIX + original.model_type,
                                        "__module__": __name__})
    elif isinstance(original, type) and issubclass(original, transformers.PreTrainedModel):
        if original.config_class is None:
            raise AttributeError(f"{original.__name__} names no config class")
        config_class = _mean_pooled_class(PREFIX + original.config_class.__name__)

        def __init__(self, config, *args, **kwargs):
            original.__init__(self, config, *args, **kwargs)
            add_mean_pooling(self)

        made = type(name, (original,), {"config_class": config_class, "__init__": __init__, "__module__": __name__})
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _MADE[name] = made
    return made


def auto_map(architecture: str, module: str = "modeling_ticketsearch") -> dict:
    """config.json entries that make the Auto classes load `architecture` (a transformers model class name)
    with mean pooling from `module`, a copy of this file in the model's folder."""
    original = getattr(transformers, architecture)
    config_name = PREFIX + original.config_class.__name__
    return {
        "model_type": MODEL_TYPE_PREFIX + original.config_class.model_type,
        "architectures": [PREFIX + architecture],
        "auto_map": {"AutoConfig": f"{module}.{config_name}",
                     "AutoModelForSequenceClassification": f"{module}.{PREFIX}{architecture}"},
    }


def __getattr__(name: str):
    if name.startswith(PREFIX):
        return _mean_pooled_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
