"""Unit discovery, exact counts and specs on tiny random encoders of every supported family."""

from types import SimpleNamespace

import pytest
from conftest import TINY_CONFIGS
from torch import nn
from transformers import AutoModelForSequenceClassification

from spaces import MODULE_TYPES, TENSORS_FILE, SpaceConfig, Spec, SubnetworkSpace, Taxonomy, UsageError, load_taxonomy
from spaces.describe import describe
from trainables import load_tensors

MAPPED = [f for f in TINY_CONFIGS if f != "roformer"]
PREFIX_FAMILIES = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet"}


LORA_OFFERED = ("off", "bias", "all", "lora")  # --switch-values off,bias,all,lora


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", MAPPED)
def test_canonical_units_and_exact_counts(tiny_models, family):
    folder = tiny_models(family)
    taxonomy = load_taxonomy(folder, 3)
    assert not taxonomy.generic and taxonomy.module_types == MODULE_TYPES
    assert taxonomy.unassigned == ()  # every body parameter is in some unit
    assert "embeddings" in taxonomy.extra_units and "embeddings.norm" in taxonomy.extra_units
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    assert taxonomy.total_params == sum(p.numel() for p in model.parameters())
    space = SubnetworkSpace(taxonomy, SpaceConfig(values=LORA_OFFERED))
    assert {"lora.qv", "lora.all-linear"} <= set(space.seed_points())  # with LoRA offered, its reference points
    for name, point in space.seed_points().items():
        refs = [r for r in space(_FixedTrial(point))["units"]]
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)  # a trial's own, fresh
        taxonomy.apply(model, refs)
        assert trainable_count(model) == taxonomy.count(refs), name
    # the head is every parameter outside the base model, whatever its shape (RoBERTa's has two layers)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    taxonomy.apply(model, [])
    assert trainable_count(model) == taxonomy.head_params > 0


@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_every_family_trains_scores_and_exports_a_sub_network(tiny_models, family, tmp_path):
    """What differs between families in a search, without Ray around it (one end-to-end search on Ray is
    in test_search_run): a trial trains full fine-tuning and a top-layer sub-network (a frozen prefix
    below it), checkpoints it; the held-out scoring from that checkpoint and a spec applied to a fresh
    model give the trained model's own outputs."""
    import numpy as np
    import torch
    from conftest import make_text_file
    from safetensors.torch import load_file

    from trainables import TrialRun, TrialSettings, encode, load_task, load_tokenizer, predict, predict_saved

    folder = tiny_models(family)
    task, splits = load_task(data=str(make_text_file(tmp_path / "three.csv", rows=120, classes=("a", "b", "c"))),
                             text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(folder), 16, 24, 12)
    taxonomy = load_taxonomy(folder, 3)
    space = SubnetworkSpace(taxonomy)
    top = taxonomy.num_layers - 1
    choices = {"full": space(_FixedTrial(space.seed_points()["full"]))["units"],
               "top layer": [u.id for u in taxonomy.units if u.layer == top]}
    for name, units in choices.items():
        settings = TrialSettings(model=folder, num_labels=3, max_epochs=1, batch_size=8)
        run = TrialRun.start({"units": units, "lr": 1e-3}, len(data.train), settings, torch.device("cpu"))
        # the prefix cache where the family supports it (ELECTRA here projects its embeddings: not)
        assert (run.prefix is not None) == (name == "top layer" and family in PREFIX_FAMILIES), name
        [result] = list(run.epochs(data, settings))
        assert np.isfinite(result["eval_loss"]) and result["trainable_params"] == taxonomy.count(units), name
        run.save(tmp_path)
        expected = predict(run.model, data.test, prefix=run.prefix)[0]
        tensors = load_file(str(tmp_path / TENSORS_FILE))
        assert np.allclose(predict_saved(units, tensors, data.test, settings), expected, atol=1e-5), name
        spec = Spec.from_units(taxonomy, units)
        fresh = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
        spec.apply(fresh, taxonomy)
        load_tensors(fresh, tensors)
        assert np.allclose(predict(fresh.eval(), data.test)[0], expected, atol=1e-5), name


def test_albert_shares_one_layer_across_depth(tiny_models):
    taxonomy = load_taxonomy(tiny_models("albert"), 2)
    assert taxonomy.num_layers == 1 and taxonomy.layer_applications == 2
    assert [u.id for u in taxonomy.units if u.layer is not None] == [f"0.{m}" for m in MODULE_TYPES]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_models("albert"), num_labels=2)
    taxonomy.apply(model, ["0.query"])
    assert trainable_count(model) == taxonomy.count(["0.query"]) == taxonomy.head_params + 32 * 32 + 32
    assert describe(tiny_models("albert"))["layer_applications"] == 2


def test_generic_discovery_for_an_unmapped_encoder(tiny_models):
    taxonomy = load_taxonomy(tiny_models("roformer"), 2)
    assert taxonomy.generic and taxonomy.num_layers == 2
    assert "attention.self.query" in taxonomy.module_types
    assert "output.LayerNorm" in taxonomy.norm_types
    model = AutoModelForSequenceClassification.from_pretrained(tiny_models("roformer"), num_labels=2)
    refs = ["1.attention.self.query", "embeddings", "0.output.LayerNorm:bias"]
    taxonomy.apply(model, refs)
    assert trainable_count(model) == taxonomy.count(refs)
    assert "layernorm" in SubnetworkSpace(taxonomy).seed_points()
    info = describe(tiny_models("roformer"))
    assert info["generic"] is True


def test_generic_discovery_fails_clearly_without_layers():
    class Flat(nn.Module):
        """A classifier of an unmapped architecture whose base model has no list of layers."""

        base_model_prefix = "flat"

        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(model_type="flat", num_labels=2)
            self.flat = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
            self.classifier = nn.Linear(4, 2)

    with pytest.raises(UsageError, match="found no repeated layer list in this model"):
        Taxonomy(Flat(), "flat")


def test_spec_refuses_another_architecture(tiny_models, tmp_path):
    spec = Spec.from_units(load_taxonomy(tiny_models("distilbert"), 2), ["0.query"])
    with pytest.raises(UsageError, match="fingerprints differ"):
        spec.validate(load_taxonomy(tiny_models("bert"), 2))


class _FixedTrial:
    """The part of an Optuna trial a define-by-run space uses, answering from fixed values."""

    def __init__(self, values):
        self.values = values

    def suggest_categorical(self, name, choices):
        return self.values[name]

    def suggest_float(self, name, low, high, log=False):
        return self.values[name]
