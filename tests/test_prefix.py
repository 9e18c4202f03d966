"""Frozen-prefix caching computes what the plain eval-mode forward computes, and trials share the cache."""

import copy

import pytest
import torch

from spaces import load_taxonomy
from trainables import (
    FrozenPrefix,
    TrialRun,
    TrialSettings,
    encode,
    eval_batches,
    forward_inputs,
    frozen_prefix_layers,
    load_model,
    load_task,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def split_for(text_csv):
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    cache = {}

    def get(model_dir):
        if model_dir not in cache:
            cache[model_dir] = encode(task, splits, load_tokenizer(model_dir), max_length=16, train_size=48)
        return cache[model_dir]

    return get


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "mpnet"])
@pytest.mark.parametrize("trained", ["top layer", "head only"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_cached_prefix_gives_the_same_gradients(tiny_models, split_for, family, trained, pooling):
    model_dir = tiny_models(family)
    taxonomy = load_taxonomy(model_dir, 2, pooling)
    top = taxonomy.num_layers - 1
    refs = [u.id for u in taxonomy.units if u.layer == top] if trained == "top layer" else []
    torch.manual_seed(0)
    plain, _ = load_model(model_dir, 2, pooling)
    cached = copy.deepcopy(plain)
    for model in (plain, cached):
        taxonomy.apply(model, refs)
    layers = frozen_prefix_layers(cached, taxonomy)
    assert layers == (top if trained == "top layer" else taxonomy.num_layers)
    params = dict(cached.named_parameters())
    prefix = FrozenPrefix(cached, taxonomy, layers)
    prefix.install()
    plain.eval(), cached.eval()  # no dropout anywhere, so the two must agree exactly (up to rounding)

    split = split_for(model_dir).train
    batches = list(eval_batches(split, 16, forward_inputs(plain)))
    for rows, batch in batches[:2]:
        plain.zero_grad(), cached.zero_grad()
        expected = plain(**batch)
        expected.loss.backward()
        prefix.feed(split, rows, batch["input_ids"].shape[1])
        got = cached(**batch)
        got.loss.backward()
        torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-4)
        for name, param in plain.named_parameters():
            if param.requires_grad:
                torch.testing.assert_close(params[name].grad, param.grad, atol=1e-5, rtol=1e-4)
    # The frozen layers no longer run: only the trained layers (and the head) are left in the model.
    assert sum(1 for _ in cached.parameters()) < sum(1 for _ in plain.parameters())


def test_unsupported_or_embedding_training_runs_plainly(tiny_models):
    electra = tiny_models("electra")  # its embeddings are projected before the layers: not cached
    model, _ = load_model(electra, 2)
    taxonomy = load_taxonomy(electra, 2)
    taxonomy.apply(model, [])
    assert frozen_prefix_layers(model, taxonomy) == 0
    bert = tiny_models("bert")
    model, _ = load_model(bert, 2)
    taxonomy = load_taxonomy(bert, 2)
    taxonomy.apply(model, ["embeddings.norm", "1.value"])  # something below every layer trains
    assert frozen_prefix_layers(model, taxonomy) == 0
    taxonomy.apply(model, ["pooler", "1.value"])
    assert frozen_prefix_layers(model, taxonomy) == 1


def test_trials_share_the_cache_and_checkpoints_keep_full_names(tiny_bert_3_layers, split_for, tmp_path):
    data = split_for(tiny_bert_3_layers)
    settings = TrialSettings(model=tiny_bert_3_layers, num_labels=2, max_epochs=2, batch_size=16,
                             cache_dir=str(tmp_path / "cache"))
    config = {"units": ["2.value", "2.ffn.norm"], "lr": 1e-3}
    first = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    assert first.prefix is not None and first.prefix.layers == 2
    result = next(first.epochs(data, settings))
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2  # train and validation states, written once

    first.save(tmp_path)  # checkpoints name tensors as in the whole model
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "tensors.safetensors"))
    assert "bert.encoder.layer.2.attention.self.value.weight" in saved and "classifier.weight" in saved

    second = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    second.restore(tmp_path)
    assert second.epoch == 1
    final = next(second.epochs(data, settings))
    assert final["epoch"] == 2 and sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    # the reported accuracy is that of the trained model on validation, through the cache or not
    from trainables import evaluate

    assert final["accuracy"] == pytest.approx(evaluate(second.model, data.validation, prefix=second.prefix)["accuracy"])
    assert result["accuracy"] != final["accuracy"] or result["eval_loss"] != final["eval_loss"]  # it trained

    plain = TrialRun.start(config, len(data.train), TrialSettings(**{**settings.__dict__, "prefix_cache": False}),
                           torch.device("cpu"))
    assert plain.prefix is None


def test_an_epoch_trained_again_after_a_restore_is_the_same_epoch(tiny_bert, split_for, tmp_path):
    """A resumed run retrains the epochs after its snapshot's checkpoint: with the random state (dropout)
    in the checkpoint, it computes exactly what the uninterrupted trial computed."""
    data = split_for(tiny_bert)
    settings = TrialSettings(model=tiny_bert, num_labels=2, max_epochs=2, batch_size=8, prefix_cache=False)
    config = {"units": ["1.value", "1.ffn.out"], "lr": 1e-3}
    straight = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    epochs = straight.epochs(data, settings)
    next(epochs)
    straight.save(tmp_path)
    second = next(epochs)

    torch.manual_seed(123)  # whatever ran in this process before the restore does not matter
    again = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    again.restore(tmp_path)
    repeated = next(again.epochs(data, settings))
    for key in ("train_loss", "eval_loss", "accuracy"):
        assert repeated[key] == second[key], key
    assert all(torch.equal(again.params[n], straight.params[n]) for n in straight.saved)
