"""The answers PEFT gives for free (KappaTune's LoRA targets, BEFT's value biases) as reference points: counted as
PEFT counts them, exported as PEFT adapters that load as printed, and a run's comparison with them chosen on
validation, never on the test rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import peft
import pytest
import torch
from test_ticket_export import apply_path_logits, load_adapter_as_printed, logits, make_export

from search import export
from search.results.versus import FREE_ANSWERS, headline, verdict, versus_free_answers
from search.ticket import adapter
from spaces import (
    SEARCH_REFERENCE_POINTS,
    SpaceConfig,
    Spec,
    SubnetworkSpace,
    beft_units,
    kappa_choice,
    kappa_units,
    load_taxonomy,
)
from trainables import load_model, load_tokenizer

RANK = 8  # the LoRA reference points' rank


LORA_OFFERED = ("off", "bias", "all", "lora")  # --switch-values off,bias,all,lora


def _point_units(space: SubnetworkSpace, name: str) -> list[str]:
    values = {k: v for k, v in space.seed_points()[name].items() if k != "lr_scale"}
    return space.proposal(values, 1.0)["units"]


@pytest.mark.parametrize("where", ["minilm", "roberta", "llama"])
def test_lora_kappa_counts_what_peft_s_kappatune_adapter_trains(tiny_models, tiny_decoders, where):
    """PEFT's users: find_kappa_target_modules on the classification model, then a rank-8 LoRA on its targets with
    the head saved. The reference point trains exactly as many parameters."""
    name = {"minilm": "minilm", "roberta": tiny_models("roberta"), "llama": tiny_decoders("llama")}[where]
    pooling = "mean" if where == "minilm" else "cls"
    taxonomy = load_taxonomy(name, 2, pooling)
    choice = kappa_choice(name, 2, pooling)
    assert choice.units and not choice.left_out
    space = SubnetworkSpace(taxonomy, SpaceConfig(granularity="unit", values=LORA_OFFERED, kappa_units=choice.units))
    assert "lora.kappa" in space.seed_points()
    units = _point_units(space, "lora.kappa")
    assert sorted(u.split(":")[0] for u in units) == sorted(choice.units) and all(u.endswith(f":lora{RANK}")
                                                                                for u in units)
    model, _ = load_model(name, 2, pooling)
    head = sorted({n.split(".")[0] for n in taxonomy.head})
    targets = [m for m in choice.modules if m not in head]
    config = peft.LoraConfig(r=RANK, target_modules=targets, modules_to_save=head, task_type="SEQ_CLS")
    trainable, _ = peft.get_peft_model(model, config).get_nb_trainable_parameters()
    assert taxonomy.count(units) == trainable
    if where == "minilm":  # the figure: ffn.in in every layer, 92,160 at rank 8, the head aside
        assert choice.units == tuple(f"{layer}.ffn.in" for layer in range(6))
        assert taxonomy.count(units) - taxonomy.head_params == 92_160
        module_space = SubnetworkSpace(taxonomy, SpaceConfig(values=LORA_OFFERED, kappa_units=choice.units))
        assert module_space.seed_points()["lora.kappa"]["ffn.in"] == f"lora{RANK}"


@pytest.mark.parametrize("where", ["minilm", "roberta", "qwen2"])
def test_beft_counts_what_peft_s_beft_adapter_trains(tiny_models, tiny_decoders, where):
    name = {"minilm": "minilm", "roberta": tiny_models("roberta"), "qwen2": tiny_decoders("qwen2")}[where]
    pooling = "mean" if where == "minilm" else "cls"
    taxonomy = load_taxonomy(name, 2, pooling)
    space = SubnetworkSpace(taxonomy, SpaceConfig(granularity="unit"))
    units = _point_units(space, "beft")
    assert units and all(u.endswith(".value:bias") for u in units)
    model, _ = load_model(name, 2, pooling)
    head = sorted({n.split(".")[0] for n in taxonomy.head})
    config = peft.BeftConfig(modules_to_save=head, task_type="SEQ_CLS")  # PEFT's own targets for the family
    trainable, _ = peft.get_peft_model(model, config).get_nb_trainable_parameters()
    assert taxonomy.count(units) == trainable


def test_beft_is_left_out_where_the_family_has_no_target_with_a_bias(tiny_models, tiny_decoders):
    assert beft_units(load_taxonomy(tiny_decoders("llama"), 2)) == ()  # v_proj has no bias: BEFT would add one
    assert beft_units(load_taxonomy(tiny_models("electra"), 2)) == ()  # no BEFT mapping for the family
    assert "beft" not in SubnetworkSpace(load_taxonomy(tiny_decoders("llama"), 2)).seed_points()


def test_a_kappa_pick_no_unit_adapts_is_left_out_and_named():
    """A BERT pooler's dense layer (cls pooling) is a linear layer KappaTune may pick; the pooler unit trains whole,
    so the pick is named as left out, and the head is never a unit."""
    taxonomy = load_taxonomy("minilm", 2, "cls")
    choice = kappa_units(taxonomy, ["classifier", "bert.pooler.dense", "bert.encoder.layer.2.attention.self.key"],
                         ["experts.gate_up_proj"])
    assert choice.units == ("2.key",)
    assert choice.left_out == ("bert.pooler.dense", "experts.gate_up_proj")


def test_the_search_s_reference_points_are_the_ends_the_baselines_and_the_free_answers():
    taxonomy = load_taxonomy("minilm", 2, "mean")
    kappa = kappa_choice("minilm", 2, "mean").units
    space = SubnetworkSpace(taxonomy, SpaceConfig(values=LORA_OFFERED, kappa_units=kappa))
    points = {n for n in space.seed_points() if n in SEARCH_REFERENCE_POINTS}
    assert points == set(SEARCH_REFERENCE_POINTS)
    assert set(FREE_ANSWERS) <= points


@pytest.mark.parametrize("units", [["0.value:bias", "1.value:bias"], ["0.value:bias", "1.attn.norm", "0.ffn.in:bias"]])
def test_a_linear_bias_ticket_exports_as_a_beft_adapter_that_loads_as_printed(tiny_models, tmp_path, units):
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", units)
    expected = apply_path_logits(out)
    spec = Spec.load(out / "spec.json")
    assert adapter.adapter_problem(spec, spec.taxonomy()) is None
    folder = export.save_adapter(out)
    assert (folder / "adapter_config.json").is_file()
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "BEFT"
    assert len(config["modules_to_save"]) == len(set(config["modules_to_save"]))  # each head module once
    model = load_adapter_as_printed(out)
    assert torch.allclose(logits(model, load_tokenizer(tiny_models("bert"))), expected, atol=1e-5, rtol=0)


def test_biases_beside_lora_or_a_norm_s_bias_alone_have_no_adapter(tiny_models, tmp_path):
    for i, units in enumerate((["0.value:bias", "1.query:lora4"], ["0.attn.norm:bias"])):
        out = make_export(tmp_path / f"e{i}", tiny_models("bert"), "mean", units)
        spec = Spec.load(out / "spec.json")
        assert "has no PEFT adapter" in adapter.adapter_problem(spec, spec.taxonomy())


def _scored(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trial_id", "preset", "selection", "trainable_params", "metric", "test_metric"])


def test_the_comparison_chooses_the_searched_ticket_on_validation_not_on_test():
    labels = np.array([0, 1] * 100)
    right = np.eye(2)[labels]
    wrong = np.eye(2)[1 - labels]

    def outputs(correct: int) -> np.ndarray:  # the first `correct` rows right, the rest wrong
        return np.concatenate([right[:correct], wrong[correct:]])

    scored = _scored([
        ("k", "lora.kappa", "ffn.in:lora8", 92_930, 0.80, 0.80),
        ("a", None, "a", 50_000, 0.83, 0.70),  # best on validation within kappa's size: chosen
        ("b", None, "b", 60_000, 0.82, 0.90),  # best on test: not chosen (a search cannot see test rows)
        ("c", None, "c", 200_000, 0.90, 0.95),  # larger than kappa: out
        ("h", "head", "head only", 770, 0.60, 0.60),
    ])
    front = scored.drop(columns="test_metric")
    out = {"k": outputs(160), "a": outputs(140), "b": outputs(180), "c": outputs(190), "h": outputs(120)}
    entries = versus_free_answers(scored, front, out, labels, "accuracy", False)
    assert [e["free_answer"] for e in entries] == ["lora.kappa"]  # the others were not scored
    entry = entries[0]
    assert entry["searched"]["trial_id"] == "a" and entry["searched"]["test_metric"] == 0.70
    assert entry["difference"]["value"] == pytest.approx(-0.10) and entry["difference"]["high"] < 0
    assert verdict(entry) == "lower"
    assert "lora.kappa" in headline(entries, "accuracy")


def test_a_free_answer_with_no_searched_ticket_at_its_size_says_so():
    labels = np.array([0, 1] * 10)
    scored = _scored([("q", "lora.qv", "query:lora8, value:lora8", 74_498, 0.7, 0.7),
                      ("s", None, "s", 100_000, 0.8, 0.8)])
    entries = versus_free_answers(scored, scored.drop(columns="test_metric"), {"q": np.eye(2)[labels],
                                  "s": np.eye(2)[labels]}, labels, "accuracy", False)
    assert entries[0]["searched"] is None and verdict(entries[0]) == "none searched"
    assert "no searched ticket" in headline(entries, "accuracy")


def test_the_console_line_says_a_free_answer_without_a_searched_ticket_as_a_sentence():
    searched = {"selection": "attn.norm", "trainable_params": 6_146, "test_metric": 0.77}
    entries = [{"free_answer": "beft", "trainable_params": 3_074, "test_metric": 0.74, "searched": None,
                "difference": None},
               {"free_answer": "layernorm", "trainable_params": 10_754, "test_metric": 0.75, "searched": searched,
                "difference": {"value": 0.02, "low": -0.01, "high": 0.05, "confidence": 0.95}}]
    line = headline(entries, "accuracy")
    assert line.endswith("(level); against beft: no searched ticket on the front at or below its 3,074 params.")
    assert "none searched" not in line
