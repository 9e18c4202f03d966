"""A ticket loaded back: `load_ticket` (ready to predict), `trainable_ticket` (ready for the user's own training loop,
exactly the ticket trainable), `save_ticket` (what such a loop trained, as an export folder `load_ticket` reads) and
`load_base` (the pre-trained model its adapter loads onto)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from spaces import SPEC_FILE, TENSORS_FILE, Spec, UsageError, ticket_parameters
from trainables import load_model, load_tensors, load_tokenizer


def load_ticket(export_dir: str | Path):
    """The exported ticket in `export_dir` (spec.json and its tensors), ready to predict: `(model, tokenizer)`.

    One call, as PEFT's `from_pretrained`: the pre-trained model with the spec's head and pooling, the
    spec's parameters replaced by the trained tensors, in eval mode, its labels named as the task's.
    """
    export_dir = Path(export_dir)
    spec = Spec.load(export_dir / SPEC_FILE)
    if not spec.tensors or not (export_dir / spec.tensors).is_file():
        raise UsageError(f"{export_dir} has no trained tensors ({spec.tensors or 'the spec names none'})")
    name, num_labels = spec.model["name"], spec.model["num_labels"]
    model, _ = load_model(name, num_labels, spec.pooling)
    spec.apply(model, spec.taxonomy())
    load_tensors(model, export_dir / spec.tensors)
    _name_labels(model, spec)
    return model.eval(), load_tokenizer(name)


def _name_labels(model, spec: Spec) -> None:
    labels = spec.source.get("label_names") or [str(i) for i in range(spec.model["num_labels"])]
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}


def load_base(export_dir: str | Path):
    """The pre-trained model the ticket in `export_dir` was cut from, with its head's shape and its pooling
    (a fresh head): the base its PEFT adapter loads onto, `PeftModel.from_pretrained(load_base(D), D/peft)`."""
    spec = Spec.load(Path(export_dir) / SPEC_FILE)
    model, _ = load_model(spec.model["name"], spec.model["num_labels"], spec.pooling)
    return model


def trainable_ticket(export_dir: str | Path, trained: bool = False):
    """The ticket in `export_dir` ready for your own training loop: `(model, tokenizer)`, in train mode, with exactly
    the ticket's parameters trainable (`requires_grad`; its LoRA adapters added, the head included) and everything
    else frozen, as transformers' `Trainer` and a plain PyTorch optimizer over `model.parameters()` respect.

    `trained=False` (the default): the pre-trained model with a fresh head, the ticket's parameters as pre-trained:
    the ticket trained from the start on your rows, as the search trained it. `trained=True`: from the tensors the
    search trained (go on training the search's model). Save what you trained with `save_ticket`.
    """
    export_dir = Path(export_dir)
    spec = Spec.load(export_dir / SPEC_FILE)
    if trained:
        model, tokenizer = load_ticket(export_dir)
    else:
        name, num_labels = spec.model["name"], spec.model["num_labels"]
        model, _ = load_model(name, num_labels, spec.pooling)
        spec.apply(model, spec.taxonomy())
        _name_labels(model, spec)
        tokenizer = load_tokenizer(name)
    return model.train(), tokenizer


def save_ticket(model, export_dir: str | Path, out: str | Path, **source) -> Path:
    """Write `model`'s ticket (a model from `trainable_ticket(export_dir)`, trained) to the folder `out`: the spec of
    `export_dir` (its metrics dropped: they were measured on the search's model; `source` adds to its source)
    and the ticket's tensors as trained; `load_ticket(out)` loads it. Returns `out`."""
    from safetensors.torch import save_file

    spec = Spec.load(Path(export_dir) / SPEC_FILE)
    params = ticket_parameters(model)
    missing = [name for name in spec.parameters if name not in params]
    if missing:
        raise UsageError(f"the model is not this ticket's ({missing[0]} missing): make it with trainable_ticket")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({name: params[name].detach().cpu().contiguous() for name in spec.parameters}, str(out / TENSORS_FILE))
    dataclasses.replace(spec, metrics={}, tensors=TENSORS_FILE, source={**spec.source, **source}).save(out / SPEC_FILE)
    return out
