"""What the head reads: the folder's own pooling (sentence-transformers), mean pooling on any encoder."""

import json

import pytest
import torch
from transformers import AutoModel

from spaces import UsageError, folder_pooling, load_taxonomy, resolve_model, resolve_pooling
from trainables import encode, eval_batches, forward_inputs, load_model, load_task, load_tokenizer


def test_a_sentence_transformers_folder_says_mean():
    folder = resolve_model("minilm")  # all-MiniLM-L6-v2: modules.json names a mean Pooling module
    assert folder_pooling(folder) == "mean"
    assert resolve_pooling("auto", folder) == "mean" and resolve_pooling("cls", folder) == "cls"


def test_a_plain_bert_folder_pools_as_its_architecture(tiny_bert, tmp_path):
    assert folder_pooling(tiny_bert) is None and resolve_pooling("auto", tiny_bert) == "cls"
    # a sentence-transformers folder that pools with the CLS token says so too
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                                    "pooling_mode_mean_tokens": False}))
    assert folder_pooling(tmp_path) == "cls"
    with pytest.raises(UsageError, match="unknown pooling 'max'"):
        resolve_pooling("max", tiny_bert)


def test_mean_pooling_has_no_pooler_unit(tiny_bert):
    cls, mean = load_taxonomy(tiny_bert, 2, "cls"), load_taxonomy(tiny_bert, 2, "mean")
    pooler = sum(cls.param_numel[n] for n in cls.unit("pooler").params)
    assert "pooler" not in mean.extra_units and mean.total_params == cls.total_params - pooler
    assert mean.fingerprint != cls.fingerprint  # a spec of one cannot be applied to the other


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "electra", "albert"])
def test_mean_pooling_feeds_the_head_the_masked_mean(tiny_models, text_csv, family):
    """The head reads the mean of the last layer's real tokens (padding left out), nothing else."""
    model_dir = tiny_models(family)
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(model_dir), max_length=16, train_size=24)
    model, _ = load_model(model_dir, 2, "mean")
    model.eval()
    encoder = AutoModel.from_pretrained(model_dir).eval()  # the same pre-trained body, no head
    pooled = {}
    head = model.pre_classifier if hasattr(model, "pre_classifier") else model.classifier
    handle = head.register_forward_pre_hook(lambda module, args: pooled.setdefault("input", args[0]))
    rows, batch = next(iter(eval_batches(data.train, 8, forward_inputs(model))))
    batch["attention_mask"][0, -3:] = 0  # some padding in the batch
    with torch.no_grad():
        model(**batch)
        states = encoder(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state
    handle.remove()
    mask = batch["attention_mask"][..., None].float()
    mean = (states * mask).sum(1) / mask.sum(1)
    seen = pooled["input"]
    if family in ("bert", "distilbert", "albert"):  # read directly: BERT's and ALBERT's poolers are gone
        torch.testing.assert_close(seen if seen.ndim == 2 else seen[:, 0], mean, atol=1e-5, rtol=1e-4)
    else:  # RoBERTa's and ELECTRA's heads take the first position of the states, which now holds the mean
        torch.testing.assert_close(seen[:, 0], mean, atol=1e-5, rtol=1e-4)
