"""LoRA units: exact counts against HF PEFT's own, the space that offers them, trials, and every export loaded as
printed to the apply path's logits."""

from __future__ import annotations

import json

import peft
import pytest
import torch
from conftest import TINY_CONFIGS, TINY_DECODERS
from safetensors.torch import load_file
from test_ticket_export import (
    apply_path_logits,
    load_adapter_as_printed,
    load_as_printed,
    logits,
    make_export,
)
from transformers import AutoTokenizer

from search import export
from spaces import SpaceConfig, Spec, SubnetworkSpace, UsageError, load_taxonomy, resolve_model, ticket_parameters
from trainables import TrialRun, TrialSettings, encode, frozen_prefix_layers, load_model, load_task, load_tokenizer

ENCODERS = [f for f in TINY_CONFIGS if f != "roformer"]  # roformer: generic discovery, tested apart
DECODERS = list(TINY_DECODERS)


def _model_dir(family, tiny_models, tiny_decoders):
    return tiny_decoders(family) if family in TINY_DECODERS else tiny_models(family)


@pytest.mark.parametrize("family", [*ENCODERS, *DECODERS])
@pytest.mark.parametrize("rank", [2, 8])
def test_the_lora_count_is_peft_s_own(tiny_models, tiny_decoders, family, rank):
    """Every linear unit adapted at one rank, and a mix of two ranks: the count PEFT's model has to train."""
    model_dir = _model_dir(family, tiny_models, tiny_decoders)
    taxonomy = load_taxonomy(model_dir, 2)
    units = taxonomy.lora_units
    assert units, family
    for refs in ([f"{u}:lora{rank}" for u in units],
                 [f"{u}:lora{rank if i % 2 else 1}" for i, u in enumerate(units)]):
        targets = taxonomy.lora_targets(refs)
        model, _ = load_model(model_dir, 2)
        conv1d = any(type(model.get_submodule(m)).__name__ == "Conv1D" for m in targets)
        # PEFT's own configuration from the names alone, each module's rank by an exact pattern
        config = peft.LoraConfig(r=rank, target_modules=sorted(targets), fan_in_fan_out=conv1d,
                                 rank_pattern={f"^{m}$".replace(".", r"\."): r for m, r in targets.items()})
        trainable, _ = peft.get_peft_model(model, config).get_nb_trainable_parameters()
        assert taxonomy.count(refs) - taxonomy.head_params == trainable, (family, refs[:2])


def test_only_linear_units_take_lora_and_ranks_are_checked(tiny_models):
    taxonomy = load_taxonomy(tiny_models("bert"), 2)
    assert "0.attn.norm" not in taxonomy.lora_units and "0.query" in taxonomy.lora_units
    assert "embeddings" not in taxonomy.lora_units
    hidden = 32  # the tiny models' width: no adapter of a 32-wide layer has more rank
    assert taxonomy.count(["0.query:lora4"]) == taxonomy.head_params + 4 * (hidden + hidden)
    for refs, message in [(["0.attn.norm:lora4"], "has no linear layer"), (["0.query:lora0"], "at least 1"),
                          ([f"0.query:lora{hidden + 1}"], "above its layer's smaller dimension"),
                          (["0.query:lorax"], "unknown part")]:
        with pytest.raises(UsageError, match=message):
            taxonomy.count(refs)


def test_the_space_offers_a_value_per_rank_on_linear_switches_only(tiny_models, tiny_decoders):
    taxonomy = load_taxonomy(tiny_models("bert"), 2)
    space = SubnetworkSpace(taxonomy, SpaceConfig(granularity="unit", values=("off", "bias", "all", "lora"),
                                                  lora_ranks=(4, 16), explicit_values=True))
    assert space.values_of["0.query"] == ("off", "bias", "lora4", "lora16", "all")  # `all` last: the largest
    assert space.values_of["0.attn.norm"] == ("off", "bias", "all")
    seeds = space.seed_points()
    qv = space.proposal({k: v for k, v in seeds["lora.qv"].items() if k != "lr_scale"}, 1.0)
    # the preset's rank is the one on offer nearest 8
    assert set(qv["units"]) == {f"{layer}.{m}:lora4" for layer in range(2) for m in ("query", "value")}
    assert qv["trainable_params"] == taxonomy.head_params + 4 * 4 * 64
    every = space.proposal({k: v for k, v in seeds["lora.all-linear"].items() if k != "lr_scale"}, 1.0)
    assert {u.split(":")[0] for u in every["units"]} == set(taxonomy.lora_units)
    # a layer switch adapts its linear units and leaves its norms frozen
    layers = SubnetworkSpace(taxonomy, SpaceConfig(granularity="layer", values=("off", "lora"), lora_ranks=(2,)))
    assert layers.refs({"layer1": "lora2"}) == [f"1.{m}:lora2" for m in ("query", "key", "value", "attn.out",
                                                                            "ffn.in", "ffn.out")]
    # GPT-2's query and value are one fused projection: the LoRA paper's preset adapts it
    gpt2 = SubnetworkSpace(load_taxonomy(tiny_decoders("gpt2"), 2),
                           SpaceConfig(granularity="unit", values=("off", "all", "lora"), explicit_values=True))
    fused = gpt2.proposal({k: v for k, v in gpt2.seed_points()["lora.qv"].items() if k != "lr_scale"}, 1.0)
    assert fused["units"] == ["0.attn.qkv:lora8", "1.attn.qkv:lora8"]
    # offered, LoRA comes at ranks 2, 8 and 32; the default space has none of it
    offered = SubnetworkSpace(taxonomy, SpaceConfig(granularity="unit", values=("off", "bias", "all", "lora")))
    assert "lora.qv" in offered.seed_points() and offered.values_of["0.query"] == (
        "off", "bias", "lora2", "lora8", "lora32", "all")
    default = SubnetworkSpace(taxonomy, SpaceConfig(granularity="unit"))
    assert "lora.qv" not in default.seed_points() and default.values_of["0.query"] == ("off", "bias", "all")


def test_a_lora_trial_trains_only_its_adapters_and_head_and_restores(tiny_bert, text_csv, tmp_path):
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(tiny_bert), max_length=16, train_size=48)
    settings = TrialSettings(model=tiny_bert, num_labels=2, max_epochs=2, batch_size=16)
    taxonomy = load_taxonomy(tiny_bert, 2)
    units = ["1.query:lora4", "1.ffn.norm"]
    config = {"units": units, "lr": 1e-2, "trainable_params": taxonomy.count(units)}
    run = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    assert run.trainable_params == sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    assert run.prefix is not None and run.prefix.layers == 1  # layer 0 stays a cached frozen prefix
    before = {n: p.detach().clone() for n, p in run.params.items()}
    first = next(run.epochs(data, settings))
    moved = {n for n, p in run.params.items() if not torch.equal(p, before[n])}
    assert moved == set(taxonomy.resolve(units))  # the adapter, the norm, the head: nothing else
    run.save(tmp_path)
    saved = load_file(str(tmp_path / "tensors.safetensors"))
    assert "bert.encoder.layer.1.attention.self.query.lora_B.weight" in saved
    again = TrialRun.start(config, len(data.train), settings, torch.device("cpu"))
    again.restore(tmp_path)
    for name in saved:
        torch.testing.assert_close(again.params[name], run.params[name])
    assert first["trainable_params"] == config["trainable_params"]


def test_an_adapter_below_every_trained_layer_still_freezes_the_prefix_below_it(tiny_bert_3_layers):
    taxonomy = load_taxonomy(tiny_bert_3_layers, 2)
    for refs, layers in [(["2.value:lora2"], 2), (["1.query:lora2", "2.ffn.norm"], 1), (["0.ffn.out:lora2"], 0)]:
        model, _ = load_model(tiny_bert_3_layers, 2)
        taxonomy.apply(model, refs)
        assert frozen_prefix_layers(model, taxonomy) == layers, refs


CASES = {"lora": ["0.query:lora4", "1.value:lora2", "1.ffn.out:lora2"],
         "mixed": ["0.query:lora4", "1.attn.out:lora2", "0.attn.norm", "1.ffn.norm", "1.ffn.in"]}


def _check_every_export(out, model_dir, pooling):
    """The three loads `search.export` prints, each to the apply path's logits (1e-5)."""
    expected = apply_path_logits(out)
    assert not torch.allclose(expected, logits(load_model(model_dir, 2, pooling)[0].eval(),
                                                load_tokenizer(model_dir)), atol=1e-3)  # the tensors matter
    ticket, tokenizer = export.load_ticket(out)
    assert (logits(ticket, tokenizer) - expected).abs().max().item() <= 1e-5
    folder = export.save_model(out)
    merged = load_as_printed(folder, pooling)
    assert not any(".lora_" in n for n, _ in merged.named_parameters())  # a plain model: the updates merged
    assert (logits(merged, load_tokenizer(model_dir)) - expected).abs().max().item() <= 1e-5
    adapter = export.save_adapter(out)
    config = json.loads((adapter / "adapter_config.json").read_text())
    spec = Spec.load(out / "spec.json")
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == resolve_model(model_dir)
    targets = spec.taxonomy().lora_targets(spec.units)
    assert sorted(config["target_modules"]) == sorted(targets)
    assert len(config["modules_to_save"]) == len(set(config["modules_to_save"]))  # each head module once
    # the adapter holds exactly what the ticket trains: adapters, whole modules, head
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    assert sum(t.numel() for t in saved.values()) == spec.trainable_params
    model = load_adapter_as_printed(out)
    assert (logits(model, load_tokenizer(model_dir)) - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("family,pooling", [("bert", "mean"), ("bert", "cls"), ("roberta", "mean"),
                                            ("deberta-v2", "cls")])
def test_a_lora_ticket_exports_and_loads_as_printed(tiny_models, tmp_path, family, pooling, case):
    _check_every_export(make_export(tmp_path / "e", tiny_models(family), pooling, CASES[case]),
                        tiny_models(family), pooling)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_decoder_lora_ticket_exports_and_loads_as_printed(tiny_decoders, tmp_path, family):
    taxonomy = load_taxonomy(tiny_decoders(family), 2)
    linear = taxonomy.lora_units
    units = [f"{linear[0]}:lora4", f"{linear[-1]}:lora2", "1.attn.norm"]
    _check_every_export(make_export(tmp_path / "e", tiny_decoders(family), "last", units), tiny_decoders(family),
                        "last")


def test_lora_with_bias_only_parts_has_no_adapter_and_says_so(tiny_models, tmp_path):
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", ["0.query:lora4", "1.value:bias"])
    with pytest.raises(UsageError, match="has no PEFT adapter: it trains part of 1 module"):
        export.save_adapter(out)
    assert not (out / "peft").exists()


@pytest.mark.integration
def test_the_default_models_lora_tickets_load_to_the_same_logits(tmp_path):
    for case, units in CASES.items():
        units = [u.replace("1.", "4.") for u in units]
        _check_every_export(make_export(tmp_path / case, "minilm", "mean", units), "minilm", "mean")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_an_exported_folder_s_tokenizer_loads_as_printed_without_a_question(tiny_models, tmp_path, monkeypatch,
                                                                            pooling):
    out = make_export(tmp_path / "e", tiny_models("bert"), pooling, CASES["lora"])
    folder = export.save_model(out)
    asked: list = []
    monkeypatch.setattr("builtins.input", lambda *args, **kwargs: asked.append(args) or "n")
    tokenizer = eval(export.tokenizer_load_line(folder, pooling), {"AutoTokenizer": AutoTokenizer})
    assert tokenizer("a film")["input_ids"] and not asked


def test_a_tiny_lora_search_runs_exports_a_picked_trial_and_reloads_it(ray_session, tiny_bert, text_csv, tmp_path,
                                                                       capsys):
    from search import run

    common = ["--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
              "--results-dir", str(tmp_path), "--max-epochs", "2", "--train-size", "64", "--eval-size", "24",
              "--max-length", "16", "--batch-size", "16"]
    code = run.main(["--model", tiny_bert, *common, "--name", "lora", "--granularity", "module",
                     "--switch-values", "off,all,lora", "--lora-ranks", "2,4", "--modules", "query,value,ffn.norm",
                     "--num-samples", "6"])
    assert code == 0
    front = json.loads((tmp_path / "lora" / "frontier.json").read_text())
    presets = {p["preset"]: p for p in front["references"]}
    picked = presets["lora.qv"]  # rank 4: the one on offer nearest 8
    assert sorted(picked["units"]) == sorted(f"{layer}.{m}:lora4" for layer in range(2) for m in ("query", "value"))
    capsys.readouterr()
    assert export.main([str(tmp_path / "lora"), "--trial", picked["trial_id"], "--out", str(tmp_path / "e"),
                        "--save-model"]) == 0
    printed = capsys.readouterr().out
    assert "(a PEFT adapter)" in printed and f"trial {picked['trial_id']}:" in printed
    spec = Spec.load(tmp_path / "e" / "spec.json")
    assert spec.units == picked["units"] and spec.trainable_params == picked["trainable_params"]
    _check_every_export(tmp_path / "e", tiny_bert, "cls")
    assert export.main([str(tmp_path / "lora"), "--trial", "no-such-trial"]) == 2
    assert "run has no trial 'no-such-trial'" in capsys.readouterr().err

    # bad input: one line, exit 2, no run folder
    for extra, message in [(["--modules", "attn.norm,ffn.norm", "--switch-values", "off,lora"],
                            "no searched switch of"),
                           (["--switch-values", "off,lora", "--lora-ranks", "0"], "must be at least 1"),
                           (["--switch-values", "off,lora", "--lora-ranks", "4,33"], "above the smaller dimension")]:
        assert run.main(["--model", tiny_bert, *common, "--name", "bad", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
        assert not (tmp_path / "bad").exists()


def test_a_lora_tickets_parameters_are_named_as_peft_saves_them(tiny_models):
    model, _ = load_model(tiny_models("bert"), 2)
    taxonomy = load_taxonomy(tiny_models("bert"), 2)
    taxonomy.apply(model, ["0.query:lora2"])
    names = set(ticket_parameters(model))
    assert {"bert.encoder.layer.0.attention.self.query.weight",
            "bert.encoder.layer.0.attention.self.query.lora_A.weight"} <= names
    assert not any(".base_layer" in n or ".default" in n for n in names)


@pytest.mark.parametrize("family,modules,qv", [("llama", "query,value,attn.norm", ("query", "value")),
                                               ("gpt2", "attn.qkv,attn.norm", ("attn.qkv",))])
def test_a_tiny_lora_search_on_a_decoder_runs_and_its_lora_ticket_reloads(ray_session, tiny_decoders, text_csv,
                                                                          tmp_path, capsys, family, modules, qv):
    from search import run

    code = run.main(["--model", tiny_decoders(family), "--data", str(text_csv), "--text-column", "review",
                     "--label-column", "sentiment", "--results-dir", str(tmp_path), "--name", family,
                     "--max-epochs", "2", "--train-size", "64", "--eval-size", "24", "--max-length", "16",
                     "--batch-size", "16", "--num-samples", "6", "--switch-values", "off,all,lora",
                     "--lora-ranks", "2,8", "--modules", modules])
    assert code == 0
    front = json.loads((tmp_path / family / "frontier.json").read_text())
    picked = next(p for p in front["references"] if p["preset"] == "lora.qv")
    assert sorted(picked["units"]) == sorted(f"{layer}.{m}:lora8" for layer in range(2) for m in qv)
    capsys.readouterr()
    assert export.main([str(tmp_path / family), "--trial", picked["trial_id"], "--out", str(tmp_path / "e"),
                        "--save-model"]) == 0
    _check_every_export(tmp_path / "e", tiny_decoders(family), "last")
