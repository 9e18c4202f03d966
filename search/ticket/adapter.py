"""A ticket as a Hugging Face PEFT adapter (`OUT/peft/`), where the ticket fits one.

A ticket with LoRA units is a PEFT LoRA adapter: `LoraConfig` with the exact adapted modules and their ranks
(`rank_pattern`), and the modules it trains whole, with the head, in `modules_to_save`. A ticket that trains the
biases of linear layers (BitFit's `:bias`, PEFT's BEFT) is a PEFT BEFT adapter (`BeftConfig`, PEFT 0.20): BEFT adds a
vector to each target layer's output, which is the layer's bias moved by the trained amount (`beft_bias` = trained
bias minus pre-trained bias), with the modules it trains whole and the head in `modules_to_save`. Any other ticket is
an LN-tuning adapter, as follows.

PEFT's LN tuning (`LNTuningConfig`) trains a copy of each whole target module and saves those copies; its
`modules_to_save` does the same for the classification head. A ticket fits when every module it trains is
trained whole: its LayerNorms, `value`, `attn.out`, embeddings, ... (any unit, any family). A ticket that
trains part of a module otherwise (a `:weight` alone, a LayerNorm's bias alone, biases beside LoRA units) has no
adapter: LN tuning has no way to keep a module's weight frozen while its bias moves, and one PEFT adapter is one
method. A head-only ticket is an adapter whose one target is the head
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


def adapter_modules(parameters: list[str], all_parameters: list[str], head: list[str],
                    linears=frozenset()) -> tuple[list[str], list[str], list[str]]:
    """`(target_modules, modules_to_save, bias_modules)`: the module paths a ticket trains whole, the head's top
    modules, and the linear layers (of `linears`) whose bias alone it trains (a BEFT adapter's targets).

    `parameters`: the ticket's trainable parameter names (head included); `all_parameters`: the model's;
    `head`: the head's parameter names. UsageError when some other module is trained only in part.
    """
    trainable = set(parameters)
    head_set = set(head)
    owned: dict[str, list[str]] = {}
    for name in all_parameters:
        if name not in head_set:
            owned.setdefault(name.rpartition(".")[0], []).append(name)
    whole, partial, biases = [], [], []
    for module, names in owned.items():
        chosen = [n for n in names if n in trainable]
        if chosen and len(chosen) == len(names):
            whole.append(module)
        elif chosen == [f"{module}.bias"] and module in linears:
            biases.append(module)
        elif chosen:
            partial.append(f"{module} ({', '.join(n.rpartition('.')[2] for n in chosen)} only)")
    if partial:
        shown = "; ".join(partial[:3]) + (f"; and {len(partial) - 3} more" if len(partial) > 3 else "")
        raise UsageError(f"this ticket has no PEFT adapter: it trains part of {len(partial)} module(s), {shown}; "
                         f"PEFT's LoRA, BEFT (linear layers' biases) and LN tuning train whole modules beside their "
                         f"adapters (load it with search.load_ticket instead)")
    # a module inside another target is copied with it
    targets = [m for m in whole if not any(m.startswith(other + ".") for other in whole)]
    return targets, sorted({n.split(".")[0] for n in head}), biases


def check_adapter(spec, taxonomy) -> tuple[list[str], list[str], list[str]]:
    """`adapter_modules` for a spec on its model's taxonomy (UsageError when the ticket has no adapter)."""
    linears = frozenset(m for m in taxonomy.linear_dims if not taxonomy.conv1d(m))
    targets, head, biases = adapter_modules(spec.parameters, list(taxonomy.param_numel), list(taxonomy.head),
                                            linears)
    if biases and taxonomy.lora_targets(spec.units):
        shown = ", ".join(biases[:2]) + (f" and {len(biases) - 2} more" if len(biases) > 2 else "")
        raise UsageError(f"this ticket has no PEFT adapter: it trains part of {len(biases)} module(s), {shown} (bias "
                         f"only), beside LoRA adapters, and a PEFT adapter is one method (load it with "
                         f"search.load_ticket instead)")
    return targets, head, biases


def adapter_problem(spec, taxonomy) -> str | None:
    """Why the ticket has no PEFT adapter (one line), or None when it has one."""
    try:
        check_adapter(spec, taxonomy)
    except UsageError as exc:
        return str(exc)
    return None


# The head modules PEFT's sequence-classification model adds to `modules_to_save` itself, by these names, whether
# the model has them or not (peft.PeftModelForSequenceClassification): named again, they are saved twice.
PEFT_SEQ_CLS_HEADS = ("classifier", "score")


def saved_beside(modules: list[str]) -> list[str] | None:
    """`modules_to_save` for a sequence-classification adapter: the modules PEFT does not add itself, or None."""
    return [m for m in modules if m not in PEFT_SEQ_CLS_HEADS] or None


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


def write_adapter(out: Path, ticket, spec, taxonomy, reproduces) -> Path:
    """Write `OUT/peft` from `ticket` (the trained model; an LN-tuning adapter wraps it in place) and return the
    folder.

    `reproduces(model)` raises unless `model` gives the ticket's logits: the folder is loaded back as
    printed and checked by it. When any step fails the folder is removed."""

    targets, head, biases = check_adapter(spec, taxonomy)
    folder = Path(out) / ADAPTER_DIR
    if folder.exists():
        shutil.rmtree(folder)
    try:
        if lora := taxonomy.lora_targets(spec.units):
            adapted = _lora_adapter(ticket, spec, lora, [*targets, *head])
        elif biases:
            adapted = _beft_adapter(ticket, spec, biases, [*targets, *head])
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

    base, trained = _base_with_trained(ticket, spec)
    config = lora_config(lora, base, spec.lora_alpha_ratio, modules_to_save=saved_beside(modules_to_save),
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


def _base_with_trained(ticket, spec, keep_pretrained: frozenset[str] | set[str] = frozenset()):
    """The pre-trained model with the ticket's trained tensors copied in (those of `keep_pretrained` aside), and
    the ticket's trained tensors by name."""
    trained = {name: p.detach() for name, p in ticket_parameters(ticket).items() if name in set(spec.parameters)}
    base, _ = load_model(spec.model["name"], spec.model["num_labels"], spec.pooling)
    base_params = ticket_parameters(base)
    with torch.no_grad():  # the whole modules and the head as trained: modules_to_save copies them as they are
        for name, value in trained.items():
            if name in base_params and name not in keep_pretrained:
                base_params[name].copy_(value)
    return base, trained


def _beft_adapter(ticket, spec, biases: list[str], modules_to_save: list[str]):
    """A PeftModel of PEFT's BEFT on the linear layers whose biases the ticket trains (`biases`), each adapter
    vector the trained bias minus the pre-trained one, with the whole modules and the head as `modules_to_save`."""
    import peft

    pretrained = {f"{m}.bias" for m in biases}
    base, trained = _base_with_trained(ticket, spec, keep_pretrained=pretrained)
    before = {name: p.detach().clone() for name, p in ticket_parameters(base).items() if name in pretrained}
    config = peft.BeftConfig(target_modules=list(biases), modules_to_save=saved_beside(modules_to_save),
                             task_type=peft.TaskType.SEQ_CLS)
    with warnings.catch_warnings():
        _quiet_peft()
        adapted = peft.get_peft_model(base, config)
    vectors = {name.removeprefix("base_model.model.").replace(".beft_bias.default", ""): p
               for name, p in adapted.named_parameters() if ".beft_bias." in name}
    if set(vectors) != set(biases):
        raise RuntimeError(f"PEFT's BEFT adapter and the ticket differ at {sorted(set(vectors) ^ set(biases))[0]}")
    with torch.no_grad():
        for module, vector in vectors.items():
            name = f"{module}.bias"
            vector.copy_((trained[name] - before[name]).reshape(vector.shape))
    return adapted


def _ln_tuning_adapter(ticket, targets: list[str], head: list[str]):
    """The ticket as PEFT's LN tuning of the modules it trains whole (the ticket itself is wrapped)."""
    import peft

    if targets:
        config = peft.LNTuningConfig(target_modules=targets, modules_to_save=saved_beside(head),
                                     task_type=peft.TaskType.SEQ_CLS)
    else:  # a head-only ticket: PEFT needs a target, and a sequence-classification adapter saves its head
        config = peft.LNTuningConfig(target_modules=head)  # aside, so the head itself is the target
    with warnings.catch_warnings():
        _quiet_peft()
        return peft.get_peft_model(ticket, config)
