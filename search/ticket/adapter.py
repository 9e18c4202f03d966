"""A ticket as a Hugging Face PEFT adapter (`OUT/peft/`), where the ticket fits one.

A ticket with LoRA units is a PEFT LoRA adapter: `LoraConfig` with the exact adapted modules and their ranks
(`rank_pattern`), and the modules it trains whole, with the head, in `modules_to_save`. A ticket without is an
LN-tuning adapter, as follows.

PEFT's LN tuning (`LNTuningConfig`) trains a copy of each whole target module and saves those copies; its
`modules_to_save` does the same for the classification head. A ticket fits when every module it trains is
trained whole: its LayerNorms, `value`, `attn.out`, embeddings, ... (any unit, any family). A ticket that
trains part of a module (BitFit's `:bias`, a `:weight` alone) does not: LN tuning has no way to keep a
module's weight frozen while its bias moves. A head-only ticket is an adapter whose one target is the head
(PEFT's sequence-classification adapters keep their head aside, as `modules_to_save`, and need a target).

The adapter is made from the trained ticket itself (its target modules and head are copied as they are) and
loaded back onto the pre-trained model exactly as users are told to; it must give the ticket's logits, or it
is removed and export fails.
"""

from __future__ import annotations

import shutil
import types
import warnings
from pathlib import Path

import torch

from search.ticket.load import load_base
from spaces import UsageError, lora_config, resolve_model, ticket_name, ticket_parameters
from trainables import load_model, load_tokenizer

ADAPTER_DIR = "peft"  # beside spec.json


def adapter_modules(parameters: list[str], all_parameters: list[str], head: list[str]) -> tuple[list[str], list[str]]:
    """`(target_modules, modules_to_save)`: the module paths a ticket trains whole, and the head's top modules.

    `parameters`: the ticket's trainable parameter names (head included); `all_parameters`: the model's;
    `head`: the head's parameter names. UsageError when some module is trained only in part.
    """
    trainable = set(parameters)
    head_set = set(head)
    owned: dict[str, list[str]] = {}
    for name in all_parameters:
        if name not in head_set:
            owned.setdefault(name.rpartition(".")[0], []).append(name)
    whole, partial = [], []
    for module, names in owned.items():
        chosen = [n for n in names if n in trainable]
        if chosen and len(chosen) == len(names):
            whole.append(module)
        elif chosen:
            partial.append(f"{module} ({', '.join(n.rpartition('.')[2] for n in chosen)} only)")
    if partial:
        shown = "; ".join(partial[:3]) + (f"; and {len(partial) - 3} more" if len(partial) > 3 else "")
        raise UsageError(f"this ticket has no PEFT adapter: it trains part of {len(partial)} module(s), {shown}; "
                         f"PEFT's LoRA and LN tuning train whole modules beside their adapters (load it with "
                         f"search.load_ticket instead)")
    # a module inside another target is copied with it
    targets = [m for m in whole if not any(m.startswith(other + ".") for other in whole)]
    return targets, sorted({n.split(".")[0] for n in head})


def check_adapter(spec, taxonomy) -> tuple[list[str], list[str]]:
    """`adapter_modules` for a spec on its model's taxonomy (UsageError when the ticket has no adapter)."""
    return adapter_modules(spec.parameters, list(taxonomy.param_numel), list(taxonomy.head))


def adapter_problem(spec, taxonomy) -> str | None:
    """Why the ticket has no PEFT adapter (one line), or None when it has one."""
    try:
        check_adapter(spec, taxonomy)
    except UsageError as exc:
        return str(exc)
    return None


def _quiet_peft() -> None:
    """Inside a `catch_warnings` block: PEFT's notes that are no news here (LN tuning on a module that is not a
    norm; a transformers deprecation PEFT's own code triggers)."""
    warnings.filterwarnings("ignore", message="Unsupported layer type")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)


def adapter_load_line(out: Path, spec) -> str:
    """The one line that loads `OUT/peft` onto the pre-trained model, as users are told to."""
    folder = str(Path(out) / ADAPTER_DIR)
    if spec.pooling == "mean":
        # plain transformers has no mean-pooled head: the pre-trained model comes with ticketsearch's hooks
        return f"PeftModel.from_pretrained(search.load_base({str(out)!r}), {folder!r})"
    base = resolve_model(spec.model["name"])
    padding = ""
    if spec.pooling == "last":  # a decoder's head finds each text's last token by the id it was padded with

        padding = f", pad_token_id={load_tokenizer(spec.model['name']).pad_token_id}"
    return (f"PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained({base!r}, "
            f"num_labels={spec.model['num_labels']}{padding}), {folder!r})")


def load_adapter_as_printed(out: Path, spec):
    """Execute `adapter_load_line`: the model users get from the adapter, in eval mode."""
    import peft
    import transformers

    with warnings.catch_warnings():
        _quiet_peft()
        model = eval(adapter_load_line(out, spec), {  # noqa: S307 - our own line, checked as users will run it
            "PeftModel": peft.PeftModel, "search": types.SimpleNamespace(load_base=load_base),
            "AutoModelForSequenceClassification": transformers.AutoModelForSequenceClassification})
    return model.eval()


def save_adapter(out: Path, ticket, spec, taxonomy, reproduces) -> Path:
    """Write `OUT/peft` from `ticket` (the trained model; an LN-tuning adapter wraps it in place) and return the
    folder.

    `reproduces(model)` raises unless `model` gives the ticket's logits: the folder is loaded back as
    printed and checked by it. When any step fails the folder is removed."""

    targets, head = check_adapter(spec, taxonomy)
    folder = Path(out) / ADAPTER_DIR
    if folder.exists():
        shutil.rmtree(folder)
    try:
        if lora := taxonomy.lora_targets(spec.units):
            adapted = _lora_adapter(ticket, spec, lora, [*targets, *head])
        else:
            adapted = _ln_tuning_adapter(ticket, targets, head)
        # where users get the base model: a hub id, or the folder an alias names
        adapted.peft_config["default"].base_model_name_or_path = resolve_model(spec.model["name"])
        with warnings.catch_warnings():
            _quiet_peft()
            adapted.save_pretrained(folder)
        reproduces(load_adapter_as_printed(out, spec))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _lora_adapter(ticket, spec, lora: dict[str, int], modules_to_save: list[str]):
    """A PeftModel of the ticket's LoRA adapters (exact modules and ranks) on the pre-trained model, with the
    modules the ticket trains whole and its head as `modules_to_save`, holding the ticket's trained tensors."""
    import peft

    trained = {name: p.detach() for name, p in ticket_parameters(ticket).items() if name in set(spec.parameters)}
    base, _ = load_model(spec.model["name"], spec.model["num_labels"], spec.pooling)
    base_params = ticket_parameters(base)
    with torch.no_grad():  # the whole modules and the head as trained: modules_to_save copies them as they are
        for name, value in trained.items():
            if name in base_params:
                base_params[name].copy_(value)
    config = lora_config(lora, base, spec.lora_alpha_ratio, modules_to_save=modules_to_save,
                         task_type=peft.TaskType.SEQ_CLS)
    with warnings.catch_warnings():
        _quiet_peft()
        adapted = peft.get_peft_model(base, config)
    prefix = "base_model.model."
    adapters = {ticket_name(name.removeprefix(prefix)): p for name, p in adapted.named_parameters()
                if ".lora_" in name}
    missing = sorted(set(adapters) ^ {n for n in trained if ".lora_" in n})
    if missing:
        raise RuntimeError(f"PEFT's LoRA adapter and the ticket differ at {missing[0]}")
    with torch.no_grad():
        for name, param in adapters.items():
            param.copy_(trained[name])
    return adapted


def _ln_tuning_adapter(ticket, targets: list[str], head: list[str]):
    """The ticket as PEFT's LN tuning of the modules it trains whole (the ticket itself is wrapped)."""
    import peft

    if targets:
        config = peft.LNTuningConfig(target_modules=targets, modules_to_save=head, task_type=peft.TaskType.SEQ_CLS)
    else:  # a head-only ticket: PEFT needs a target, and a sequence-classification adapter saves its head
        config = peft.LNTuningConfig(target_modules=head)  # aside, so the head itself is the target
    with warnings.catch_warnings():
        _quiet_peft()
        return peft.get_peft_model(ticket, config)
