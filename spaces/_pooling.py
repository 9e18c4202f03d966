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
the pooler's parameters go (they are not in the taxonomy). The hooks live in
`spaces/modeling_ticketsearch.py`, a file that imports nothing of ticketsearch, because an exported
model carries it as its custom code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import PreTrainedModel

from spaces._cli import UsageError
from spaces._names import POOLINGS
from spaces.modeling_ticketsearch import add_mean_pooling

# Decoder-only families (model_type): their classifier reads the last real token, HF's own rule (`last`), and
# they need a padding token to find it (trainables._model).
DECODERS = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "olmo", "granite", "gemma2", "gemma3_text",
                      "olmo2", "phi3", "gpt2", "gpt_neox"})


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
    """The concrete pooling (`cls`, `mean` or `last`) for `pooling` as a user gave it, on the model at
    `location` (a folder or hub id, as `resolve_model` returns it)."""
    from spaces._models import load_config

    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling '{pooling}' (use one of {', '.join(POOLINGS)})")
    model_type = load_config(location).model_type
    _check_fits(pooling, model_type)
    if model_type in DECODERS:
        return "last"
    if pooling != "auto":
        return pooling
    if os.path.isdir(location):
        return folder_pooling(location) or "cls"
    return _hub_pooling(location) or "cls"


def _check_fits(pooling: str, model_type: str) -> None:
    """UsageError when `pooling` is not one the family's head can take."""
    decoder = model_type in DECODERS
    if decoder and pooling in ("cls", "mean"):
        raise UsageError(f"pooling '{pooling}' is for encoders: a {model_type} classifier reads the last real token "
                         f"(use --pooling last or auto)")
    if not decoder and pooling == "last":
        raise UsageError(f"pooling 'last' is for decoder-only models: a {model_type} classifier reads the first "
                         f"token (use --pooling cls, mean or auto)")


def apply_pooling(model: PreTrainedModel, pooling: str) -> PreTrainedModel:
    """Make `model` (a ...ForSequenceClassification) pool as `pooling` says, in place: `cls` or `mean` for an
    encoder, `last` for a decoder (`cls` and `last` are the architecture's own head; `mean` adds hooks)."""
    if pooling not in ("cls", "mean", "last"):
        raise UsageError(f"unknown pooling '{pooling}' (use cls, mean or last)")
    decoder = model.config.model_type in DECODERS
    if pooling != "cls" or not decoder:  # `cls`, the default of the library calls, is a decoder's own head too
        _check_fits(pooling, model.config.model_type)
    if pooling in ("cls", "last"):
        return model
    try:
        return add_mean_pooling(model)
    except ValueError as exc:  # no layer stack to pool after: the model cannot take this head
        raise UsageError(str(exc)) from None
