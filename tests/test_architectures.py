"""Unit discovery, exact counts and specs on tiny random encoders of every supported family."""

import pytest
from conftest import TINY_CONFIGS
from torch import nn
from transformers import AutoModelForSequenceClassification

from spaces import MODULE_TYPES, Spec, SubnetworkSpace, UsageError, load_taxonomy
from spaces._taxonomy import _generic_map
from spaces.describe import describe

MAPPED = [f for f in TINY_CONFIGS if f != "roformer"]


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
    space = SubnetworkSpace(taxonomy)
    for name, point in space.seed_points().items():
        refs = [r for r in space(_FixedTrial(point))["units"]]
        taxonomy.apply(model, refs)
        assert trainable_count(model) == taxonomy.count(refs), name
    # the head is every parameter outside the base model, whatever its shape (RoBERTa's has two layers)
    taxonomy.apply(model, [])
    assert trainable_count(model) == taxonomy.head_params > 0


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
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)

    with pytest.raises(UsageError, match="no repeated layer list"):
        _generic_map(Flat())


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
