"""Loading a pre-trained model with a fresh classification head, quietly and offline-friendly."""

from __future__ import annotations

import inspect

import transformers
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from spaces import DECODERS, UsageError, apply_pooling, resolve_model

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def load_model(name: str, num_labels: int, pooling: str = "cls") -> tuple[PreTrainedModel, list[str]]:
    """The model with a `num_labels` head pooling as `pooling` says (`cls`, `mean` or `last`, see
    spaces._pooling), and the names of its parameters newly initialised (not pre-trained)."""
    model, info = AutoModelForSequenceClassification.from_pretrained(
        resolve_model(name), num_labels=num_labels, output_loading_info=True
    )
    if model.config.model_type in DECODERS or model.config.pad_token_id is None:
        # a decoder's head finds the last real token by the padding token the batches are padded with
        model.config.pad_token_id = load_tokenizer(name).pad_token_id
    apply_pooling(model, pooling)
    names = dict(model.named_parameters())
    return model, sorted(n for n in info["missing_keys"] if n in names)


def forward_inputs(model: nn.Module) -> frozenset[str]:
    """Input names the model's forward accepts (DistilBERT, for one, takes no token_type_ids)."""
    return frozenset(inspect.signature(model.forward).parameters)


def load_tokenizer(name: str):
    """The model's tokenizer, with a padding token: a checkpoint without one (most decoders) pads with its
    end-of-sequence token, as HF's sequence-classification examples do; UsageError when it has neither."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UsageError(f"model '{name}' has no padding token and no end-of-sequence token to pad with: a "
                             f"padded batch would hide where each text ends (give its tokenizer a pad_token)")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
