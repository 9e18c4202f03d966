"""Decoder-only families: units under the project's vocabulary, counted exactly, the last-token head, a padding
token, and a ticket that exports and reloads to the same logits."""

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIGS, TINY_DECODERS, make_tiny_decoder

from search import export
from spaces import DECODER_MODULE_TYPES, MODULE_TYPES, UsageError, load_taxonomy, resolve_pooling
from spaces.describe import describe
from trainables import load_model, load_tokenizer

TEXTS = ["a moving, beautifully acted film", "dull", "not bad at all, honestly one of the better ones this year"]


@pytest.mark.parametrize("family", sorted(TINY_DECODERS))
def test_every_parameter_is_in_a_unit_under_the_project_s_names(tiny_decoders, family):
    info = describe(tiny_decoders(family), "module")
    assert not info["generic"] and info["pooling"] == "last" and info["unassigned_params"] == 0
    switched = sum(row["params"] for row in info["switches"])
    assert switched + info["head_params"] == info["total_params"]
    names = [row["switch"] for row in info["switches"]]
    layer_types = [n for n in names if n in DECODER_MODULE_TYPES]
    assert layer_types == [m for m in DECODER_MODULE_TYPES if m in layer_types]  # in the order a layer runs them
    assert {"attn.out", "attn.norm", "ffn.in", "ffn.out"} <= set(layer_types) and "embeddings" in names
    taxonomy = load_taxonomy(tiny_decoders(family), 2)
    fused = family in ("gpt2", "gpt_neox", "phi3")
    assert ("attn.qkv" in layer_types) == fused and ({"query", "key", "value"} <= set(layer_types)) != fused
    assert ("ffn.gate" in layer_types) == (family not in ("gpt2", "gpt_neox", "phi3"))
    assert taxonomy.decoder and taxonomy.pooling == "last"
    config = TINY_DECODERS[family]()
    if not fused and config.num_key_value_heads == 2:  # grouped-query attention: key and value are smaller
        size = {row["switch"]: row["params"] for row in info["switches"]}
        assert size["key"] < size["query"] and size["value"] == size["key"]


def test_the_layernorm_preset_holds_every_norm_of_a_decoder(tiny_decoders):
    """Gemma3's four norms a layer, its query/key norms and the final norm are all LayerNorm units."""
    taxonomy = load_taxonomy(tiny_decoders("gemma3_text"), 2)
    norm_params = {n for u in taxonomy.units if taxonomy.is_norm(u) for n in u.params}
    every_norm = {n for n in taxonomy.param_numel if "norm" in n}
    assert norm_params == every_norm and "final.norm" in taxonomy.norm_units


def test_encoders_keep_the_paper_s_vocabulary(tiny_models):
    assert load_taxonomy(tiny_models("bert"), 2).module_types == MODULE_TYPES


def test_a_decoder_reads_the_last_token_and_an_encoder_the_first(tiny_decoders, tiny_models):
    decoder, encoder = tiny_decoders("llama"), tiny_models("bert")
    assert resolve_pooling("auto", decoder) == "last" and resolve_pooling("last", decoder) == "last"
    with pytest.raises(UsageError, match="pooling 'mean' is for encoders: a llama classifier reads the last real"):
        resolve_pooling("mean", decoder)
    with pytest.raises(UsageError, match="pooling 'last' is for decoder-only models: a bert classifier reads the"):
        resolve_pooling("last", encoder)
    assert set(TINY_DECODERS).isdisjoint(TINY_CONFIGS)


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_a_decoder_without_a_padding_token_pads_with_its_end_token_and_classifies_the_last_real_one(
        tiny_decoders, family):
    folder = tiny_decoders(family)
    tokenizer = load_tokenizer(folder)
    model, _ = load_model(folder, 2, "last")
    assert tokenizer.pad_token == tokenizer.eos_token == "[SEP]"
    assert model.config.pad_token_id == tokenizer.pad_token_id  # the id the batches are padded with
    model.eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert (batch["input_ids"] == tokenizer.pad_token_id).any()  # the short texts were padded
    with torch.no_grad():
        together = model(**batch).logits
        alone = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in TEXTS])
    assert torch.allclose(together, alone, atol=1e-5)  # padding changes nothing: the head reads each text's end


def test_a_decoder_with_no_padding_and_no_end_token_is_refused(tmp_path):
    folder = make_tiny_decoder(tmp_path / "m", "llama", eos=False)
    with pytest.raises(UsageError, match="has no padding token and no end-of-sequence token to pad with"):
        load_tokenizer(str(folder))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_decoder_ticket_exports_and_reloads_to_the_same_logits(tiny_decoders, tmp_path, family):
    from test_ticket_export import apply_path_logits, load_adapter_as_printed, load_as_printed, logits, make_export

    units = ["0.attn.norm", "1.attn.out", "final.norm"]
    out = make_export(tmp_path / "e", tiny_decoders(family), "last", units)
    expected = apply_path_logits(out)
    folder = export.save_model(out)
    tokenizer = load_tokenizer(tiny_decoders(family))
    assert torch.allclose(logits(load_as_printed(folder, "last"), tokenizer), expected, atol=1e-5, rtol=0)
    export.save_adapter(out)
    assert torch.allclose(logits(load_adapter_as_printed(out), tokenizer), expected, atol=1e-5, rtol=0)
    ticket, _ = export.load_ticket(out)
    assert torch.allclose(logits(ticket, tokenizer), expected, atol=1e-5, rtol=0)


def test_a_bias_free_decoder_offers_no_bias_and_bitfit_only_where_there_are_biases(tiny_decoders):
    import optuna

    from spaces import SpaceConfig, SubnetworkSpace, refs_from_switches

    whole = SpaceConfig()  # the default's values: off, bias, all (not the user's choice)
    llama = SubnetworkSpace(load_taxonomy(tiny_decoders("llama"), 2), whole)
    assert set(llama.values_of.values()) == {("off", "all")} and llama.size() == 2 ** len(llama.switch_units)
    assert "bitfit" not in llama.seed_points() and not llama.taxonomy.has_biases
    # the default space adds LoRA to the linear switches, not to the norms or the embeddings
    default = SubnetworkSpace(llama.taxonomy, SpaceConfig(values=("off", "bias", "all", "lora")))  # LoRA offered
    assert default.values_of["query"] == ("off", "lora2", "lora8", "lora32", "all")
    assert default.values_of["attn.norm"] == default.values_of["embeddings"] == ("off", "all")
    # a default rank a layer cannot take is left out of its switch (this Llama's key projection is 16 wide);
    # the user's own ranks must fit every searched layer
    assert default.values_of["key"] == ("off", "lora2", "lora8", "all")
    with pytest.raises(UsageError, match="LoRA rank 32 is above the smaller dimension of 0.key's"):
        SubnetworkSpace(llama.taxonomy, SpaceConfig(values=("off", "bias", "all", "lora"), explicit_ranks=True))
    qwen = SubnetworkSpace(load_taxonomy(tiny_decoders("qwen2"), 2), whole)  # biases on query, key and value only
    assert qwen.values_of["query"] == ("off", "bias", "all") and qwen.values_of["attn.out"] == ("off", "all")
    bitfit = qwen.seed_points()["bitfit"]
    assert sorted(k for k, v in bitfit.items() if v == "bias") == ["key", "query", "value"]
    # no proposal, spread point or gap point holds a value that trains nothing
    study = optuna.create_study(directions=["maximize", "minimize"])
    points = [*qwen.spread_points(6), *(qwen.gap_point(1_000, 50_000, np.random.default_rng(s)) for s in range(5))]
    for _ in range(20):
        trial = study.ask()
        qwen(trial)
        points.append(trial.params)
    for point in filter(None, points):
        assert all(point[name] in qwen.values_of[name] for name in qwen.switch_units), point
        units = refs_from_switches(qwen.switch_units, {k: v for k, v in point.items() if k != "lr_scale"})
        assert all(qwen.taxonomy.resolve([ref]) != qwen.taxonomy.resolve([]) for ref in units), units
    with pytest.raises(UsageError, match="--switch-values asks for 'bias', but .* \\(llama\\) has no biases"):
        SubnetworkSpace(llama.taxonomy, SpaceConfig(values=("off", "bias", "all"), explicit_values=True))


def test_the_paper_s_module_study_on_a_decoder_has_no_bitfit(tiny_decoders):
    from search.driver.prepare import study_points

    assert "bitfit" not in study_points("paper-modules", load_taxonomy(tiny_decoders("llama"), 2))
    assert "bitfit" in study_points("paper-modules", load_taxonomy(tiny_decoders("gpt2"), 2))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_tiny_search_on_a_decoder_runs_end_to_end(ray_session, tiny_decoders, text_csv, tmp_path, family, capsys):
    """search.run on a decoder: a frontier with test numbers, and the exported ticket reloads to its logits."""
    import json

    from test_ticket_export import apply_path_logits, load_as_printed, logits

    from search import run

    code = run.main(["--model", tiny_decoders(family), "--data", str(text_csv), "--text-column", "review",
                     "--label-column", "sentiment", "--results-dir", str(tmp_path), "--name", family,
                     "--max-epochs", "2", "--train-size", "64", "--eval-size", "24", "--max-length", "16",
                     "--batch-size", "16", "--num-samples", "8"])
    assert code == 0
    front = json.loads((tmp_path / family / "frontier.json").read_text())
    run_info = json.loads((tmp_path / family / "run.json").read_text())
    assert run_info["pooling"] == "last" and front["points"] and front["test"]["rows"] > 0
    assert all(p.get("test_metric") is not None for p in front["points"])
    if family == "llama":  # bias-free: no BitFit, no `:bias` anywhere
        assert all(":bias" not in u for p in front["points"] + front["references"] for u in p["units"])
        assert not any((p.get("preset") or "") == "bitfit" for p in front["references"])
    capsys.readouterr()
    assert export.main([str(tmp_path / family), "--out", str(tmp_path / "e"), "--save-model"]) == 0
    expected = apply_path_logits(tmp_path / "e")
    reloaded = load_as_printed(tmp_path / "e" / "model", "last")
    assert torch.allclose(logits(reloaded, load_tokenizer(tiny_decoders(family))), expected, atol=1e-5, rtol=0)


def test_bad_input_on_decoders_is_one_line_and_exit_2(tiny_decoders, text_csv, tmp_path, capsys):
    from search import run

    def main(model, *extra):
        return run.main(["--model", model, "--data", str(text_csv), "--text-column", "review", "--label-column",
                         "sentiment", "--results-dir", str(tmp_path / "r"), "--train-size", "32", "--eval-size", "16",
                         *extra])

    no_pad = make_tiny_decoder(tmp_path / "no-pad", "llama", eos=False)
    cases = [((str(no_pad),), "has no padding token and no end-of-sequence token to pad with"),
             ((tiny_decoders("llama"), "--switch-values", "off,bias,all"),
              "--switch-values asks for 'bias', but "),
             ((tiny_decoders("llama"), "--pooling", "cls"), "pooling 'cls' is for encoders: a llama classifier")]
    for extra, message in cases:
        assert main(*extra, "--name", f"bad{len(message)}") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "r").exists()
