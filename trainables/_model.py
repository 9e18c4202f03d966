"""Loading a pre-trained model with a fresh classification head, quietly and offline-friendly."""

from __future__ import annotations

import inspect

import transformers
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from spaces import apply_pooling, resolve_model

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def load_model(name: str, num_labels: int, pooling: str = "cls") -> tuple[PreTrainedModel, list[str]]:
    """The model with a `num_labels` head pooling as `pooling` says (`cls` or `mean`, see spaces._pooling),
    and the names of its parameters newly initialised (not pre-trained)."""
    model, info = AutoModelForSequenceClassification.from_pretrained(
        resolve_model(name), num_labels=num_labels, output_loading_info=True
    )
    apply_pooling(model, pooling)
    names = dict(model.named_parameters())
    return model, sorted(n for n in info["missing_keys"] if n in names)


def forward_inputs(model: nn.Module) -> frozenset[str]:
    """Input names the model's forward accepts (DistilBERT, for one, takes no token_type_ids)."""
    return frozenset(inspect.signature(model.forward).parameters)


def load_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(resolve_model(name))
