"""How a sequence becomes the one vector the classification head reads: `cls` or `mean` pooling.

`cls` is the architecture's own head: the first token, through the base model's pooler where it
has one (BERT's dense + tanh). `mean` is the average of the last layer's token states over the
real (unmasked) tokens, fed to the head in place of the first token; a BERT-style pooler (ALBERT's
too) is then removed, because it was trained (if at all) for the first token only. Sentence-transformers
checkpoints such as all-MiniLM-L6-v2 are trained with mean pooling: their folder says so
(`modules.json` names a Pooling module whose `config.json` sets `pooling_mode_mean_tokens`), and
`auto` reads that, else takes `cls`.

Mean pooling works for any encoder whose head reads the first token's state: a hook on the last
layer (on the encoder, where the layers are shared, as ALBERT's) writes the masked mean into
position 0, and a hook on the base model keeps the batch's attention mask for it. Nothing else in
the model changes, so the units, the frozen-prefix cache and checkpoints work the same way; only
the pooler's parameters go (they are not in the taxonomy).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from spaces._errors import UsageError

POOLINGS = ("auto", "cls", "mean")


def folder_pooling(folder: str | Path) -> str | None:
    """`mean` or `cls` when `folder` is a sentence-transformers checkpoint that says how it pools, else None."""
    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    for module in modules if isinstance(modules, list) else []:
        if not str(module.get("type", "")).endswith("Pooling"):
            continue
        try:
            config = json.loads((folder / module.get("path", "") / "config.json").read_text())
        except (OSError, ValueError):
            return None
        if config.get("pooling_mode_mean_tokens"):
            return "mean"
        if config.get("pooling_mode_cls_token"):
            return "cls"
        return None  # max, weighted-mean, last-token: not offered; the architecture's own head is used
    return None


def _hub_pooling(repo_id: str) -> str | None:
    """The pooling a hub model's sentence-transformers files name, when they can be had (cache or hub)."""
    try:
        from huggingface_hub import hf_hub_download

        modules = Path(hf_hub_download(repo_id, "modules.json"))
        pooling_dir = None
        for module in json.loads(modules.read_text()):
            if str(module.get("type", "")).endswith("Pooling"):
                pooling_dir = module.get("path", "")
        if pooling_dir is None:
            return None
        hf_hub_download(repo_id, f"{pooling_dir}/config.json")
        return folder_pooling(modules.parent)
    except Exception:  # no such file (a plain model), offline, gated: the architecture's own head
        return None


def resolve_pooling(pooling: str, location: str) -> str:
    """The concrete pooling (`cls` or `mean`) for `pooling` as a user gave it, on the model at `location`
    (a folder or hub id, as `resolve_model` returns it)."""
    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling '{pooling}' (use one of {', '.join(POOLINGS)})")
    if pooling != "auto":
        return pooling
    if os.path.isdir(location):
        return folder_pooling(location) or "cls"
    return _hub_pooling(location) or "cls"


class _FirstToken(nn.Module):
    """Stands in for a BERT-style pooler under mean pooling: passes the pooled vector on unchanged."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 0]


def _last_states(base: nn.Module) -> nn.Module:
    """The module whose output is the sequence's last hidden states: the last block of the layer stack
    (the frozen-prefix cache relies on this: a cache of the layers below it never runs it), unless the
    blocks are shared, as ALBERT runs one layer 12 times and a hook on it would fire at every depth;
    then the encoder that runs them all."""
    last, blocks = _last_layer(base)
    if blocks >= getattr(getattr(base, "config", None), "num_hidden_layers", blocks):
        return last
    for name in ("encoder", "transformer"):
        stack = getattr(base, name, None)
        if isinstance(stack, nn.Module) and any(m is last for m in stack.modules()):
            return stack
    raise UsageError(f"mean pooling: {type(base).__name__} shares its layers and has no encoder to pool after")


def _last_layer(base: nn.Module) -> tuple[nn.Module, int]:
    """The last block of the base model's largest list of identical blocks (its layer stack), and how many
    blocks that list holds."""
    lists = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) and len({type(x) for x in m}) == 1]
    if not lists:
        raise UsageError(f"mean pooling needs a layer stack; {type(base).__name__} has none")
    layers = max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))
    last = layers[-1]
    return (last[-1] if isinstance(last, nn.ModuleList) else last), len(layers)


def apply_pooling(model: nn.Module, pooling: str) -> nn.Module:
    """Make `model` (a ...ForSequenceClassification) pool as `pooling` says (`cls` or `mean`); in place."""
    if pooling == "cls":
        return model
    if pooling != "mean":
        raise UsageError(f"unknown pooling '{pooling}' (use cls or mean)")
    base = getattr(model, model.base_model_prefix)
    if getattr(base, "_ticketsearch_pooling", None) == "mean":
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
    _last_states(base).register_forward_hook(mean_into_first)
    base._ticketsearch_pooling = "mean"
    return model
