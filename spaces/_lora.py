"""Low-rank adapters (LoRA) as a unit's part: `"3.query:lora8"` adapts layer 3's query with a rank-8 update.

A LoRA unit adds parameters instead of unfreezing existing ones: for each linear layer of the unit, HF PEFT's
`lora_A` (rank x in) and `lora_B` (out x rank), r x (in + out) parameters, no bias. The adapters are PEFT's own
LoRA layers, injected into the model in place (`peft.inject_adapter_in_model`), so that a ticket exports as a
PEFT LoRA adapter that loads with `PeftModel.from_pretrained`.

Names. PEFT renames what it wraps: the adapted layer's own weight becomes `<module>.base_layer.weight` and the
adapter's `<module>.lora_A.default.weight`. A ticket names parameters the PEFT-free way, as PEFT's saved
adapters do: `<module>.weight` and `<module>.lora_A.weight`. `ticket_parameters(model)` gives a model's parameters by
those names whether or not adapters are injected; checkpoints and specs use them.

Scaling. PEFT scales the update by alpha / rank. Alpha is `LORA_ALPHA_RATIO` x rank (a fixed scaling of 2,
whatever the rank: the common "alpha = 2r" recipe), so that the learning rate, which the search scales, is the
one knob: with Adam, a larger alpha and a larger rate move the update alike. No LoRA dropout: a trial already
trains with the model's own dropout, on few rows for few epochs.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import nn

LORA_ALPHA_RATIO = 2  # lora_alpha = ratio x rank: the update's scale alpha / rank is 2 at every rank
LORA_DROPOUT = 0.0
ADAPTER = "default"  # PEFT's adapter name inside a trial's model

_BASE_LAYER = re.compile(r"\.base_layer(?=\.)")
_ADAPTER_NAME = re.compile(rf"\.(lora_[AB])\.{ADAPTER}(?=\.)")
_PART = re.compile(r"lora(\d+)")


def parse_rank(part: str) -> int | None:
    """The rank of a reference's part `lora<rank>` (None for any other part)."""
    match = _PART.fullmatch(part)
    return int(match.group(1)) if match else None


def lora_names(module: str) -> tuple[str, str]:
    """A LoRA layer's two parameter names, as a ticket names them: `<module>.lora_A.weight`, `.lora_B.weight`."""
    return f"{module}.lora_A.weight", f"{module}.lora_B.weight"


def ticket_name(name: str) -> str:
    """A parameter's name without PEFT's wrapping (`.base_layer`, the adapter name): the name a ticket uses."""
    return _ADAPTER_NAME.sub(r".\1", _BASE_LAYER.sub("", name))


def ticket_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """`model`'s parameters by their ticket names (see `ticket_name`), in model order."""
    return {ticket_name(name): param for name, param in model.named_parameters()}


def is_conv1d(module: nn.Module) -> bool:
    """GPT-2's `Conv1D`: a linear layer whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D"


def is_linear(module: nn.Module) -> bool:
    """A layer LoRA can adapt: `nn.Linear`, or GPT-2's `Conv1D`."""
    return isinstance(module, nn.Linear) or is_conv1d(module)


def linear_dims(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a linear layer (`is_linear`)."""
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor")
    rows, columns = weight.shape
    return (int(rows), int(columns)) if is_conv1d(module) else (int(columns), int(rows))


def _pattern(name: str) -> str:
    return re.escape(name)  # PEFT reads rank_pattern's keys as regular expressions: a module's exact name


def lora_config(targets: dict[str, int], model: nn.Module, alpha_ratio: int = LORA_ALPHA_RATIO,
                modules_to_save: list[str] | None = None, task_type=None):
    """The `peft.LoraConfig` of these adapters on `model`: `targets` maps each adapted module's full name to its
    rank.

    The most common rank is `r`, the others are in `rank_pattern` (and their alphas in `alpha_pattern`), each
    by the module's exact name. GPT-2's `Conv1D` targets (weights stored (in, out)) set `fan_in_fan_out`.
    """
    import peft

    conv1d = any(is_conv1d(model.get_submodule(m)) for m in targets)

    ranks = sorted(targets.values())
    common = max(set(ranks), key=lambda r: (ranks.count(r), -r))
    return peft.LoraConfig(
        r=common, lora_alpha=alpha_ratio * common, lora_dropout=LORA_DROPOUT, bias="none",
        target_modules=sorted(targets),
        rank_pattern={_pattern(m): r for m, r in sorted(targets.items()) if r != common},
        alpha_pattern={_pattern(m): alpha_ratio * r for m, r in sorted(targets.items()) if r != common},
        fan_in_fan_out=conv1d, modules_to_save=modules_to_save, task_type=task_type,
    )


def inject(model: nn.Module, targets: dict[str, int], alpha_ratio: int = LORA_ALPHA_RATIO) -> None:
    """Add PEFT's LoRA layers to `model` in place: one per module of `targets` (full name -> rank)."""
    import peft

    with warnings.catch_warnings():
        # PEFT's note that a classification model's head is not saved by a bare injection: the ticket saves it
        warnings.filterwarnings("ignore", message=".*modules_to_save.*")
        peft.inject_adapter_in_model(lora_config(targets, model, alpha_ratio), model, adapter_name=ADAPTER)


def has_adapters(model: nn.Module) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every injected LoRA update into its layer's weight and put the plain layer back (PEFT's
    `merge_and_unload` for a model with injected adapters): the model then has no adapter left."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in wrapped:
        layer.merge()
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, layer.get_base_layer())
    return model
