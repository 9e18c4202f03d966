"""A ticket loaded back: `load_ticket` (ready to predict) and `load_base` (the pre-trained model its adapter
loads onto)."""

from __future__ import annotations

from pathlib import Path

from spaces import SPEC_FILE, Spec, UsageError
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
    labels = spec.source.get("label_names") or [str(i) for i in range(num_labels)]
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    return model.eval(), load_tokenizer(name)


def load_base(export_dir: str | Path):
    """The pre-trained model the ticket in `export_dir` was cut from, with its head's shape and its pooling
    (a fresh head): the base its PEFT adapter loads onto, `PeftModel.from_pretrained(load_base(D), D/peft)`."""
    spec = Spec.load(Path(export_dir) / SPEC_FILE)
    model, _ = load_model(spec.model["name"], spec.model["num_labels"], spec.pooling)
    return model
