"""A ticket users take home: the saved model folder and the one-call loader give the logits the search measured.

Each export is loaded exactly as `python -m search.export` tells users to, and compared with the project's
own apply path (pre-trained model + spec + trained tensors), on every pooling and on several families: the
complete model folder, the PEFT adapter on the pre-trained model, and the one-call loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from search import export
from search.ticket import adapter
from spaces import SPEC_FILE, TENSORS_FILE, Spec, UsageError, load_taxonomy, ticket_parameters
from trainables import load_model, load_tensors, load_tokenizer

TEXTS = ["a moving, beautifully acted film", "dull", "not bad at all, honestly one of the better ones this year",
         "the plot? what plot?", "I walked out after twenty minutes"]


def make_export(out: Path, model_name: str, pooling: str, units: list[str], seed: int = 0) -> Path:
    """An export folder as `search.export` writes it: a spec and trained tensors (here: the pre-trained values
    moved by seeded noise, so a loader that drops them, or the head, gives other logits)."""
    taxonomy = load_taxonomy(model_name, 2, pooling)
    model, _ = load_model(model_name, 2, pooling)
    trainable = set(taxonomy.apply(model, units))
    generator = torch.Generator().manual_seed(seed)
    # a LoRA update moves far less than its own weights: noise of that size, as training gives (0.5 would make each
    # adapted layer's weights several times their pre-trained size, and a merged folder differ by rounding alone)
    tensors = {name: (p.detach() + (0.05 if ".lora_" in name else 0.5) * torch.randn(p.shape, generator=generator)
                      ).contiguous() for name, p in ticket_parameters(model).items() if name in trainable}
    out.mkdir(parents=True)
    save_file(tensors, str(out / TENSORS_FILE))
    Spec.from_units(taxonomy, units, metrics={"accuracy": 0.8}, tensors=TENSORS_FILE,
                    source={"run": "r", "trial": f"t{seed}", "label_names": ["rotten", "fresh"]}).save(out / SPEC_FILE)
    return out


def apply_path_logits(out: Path) -> torch.Tensor:
    """What the search's own code computes for the exported ticket."""
    spec = Spec.load(out / SPEC_FILE)
    name, pooling = spec.model["name"], spec.model["pooling"]
    model, _ = load_model(name, 2, pooling)
    spec.apply(model, load_taxonomy(name, 2, pooling))
    load_tensors(model, out / TENSORS_FILE)
    return logits(model.eval(), load_tokenizer(name))


def logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def load_as_printed(folder: Path, pooling: str):
    """The line `search.export` prints, executed."""
    line = export.model_load_line(folder, pooling)
    return eval(line, {"AutoModelForSequenceClassification": AutoModelForSequenceClassification}).eval()


@pytest.mark.parametrize("family,pooling", [("bert", "mean"), ("bert", "cls"), ("albert", "mean"),
                                            ("distilbert", "mean"), ("roberta", "mean")])
def test_saved_model_loads_as_printed_to_the_same_logits(tiny_models, tmp_path, family, pooling):
    out = make_export(tmp_path / "e", tiny_models(family), pooling, ["0.attn.norm", "0.value"])
    expected = apply_path_logits(out)
    folder = export.save_model(out)
    model = load_as_printed(folder, pooling)
    assert torch.allclose(logits(model, AutoTokenizer.from_pretrained(folder)), expected, atol=1e-5, rtol=0)
    assert model.config.id2label == {0: "rotten", 1: "fresh"}
    ticket, tokenizer = export.load_ticket(out)
    assert torch.allclose(logits(ticket, tokenizer), expected, atol=1e-5, rtol=0)
    # the tensors matter: the pre-trained model with a fresh head gives something else
    assert not torch.allclose(logits(load_model(tiny_models(family), 2, pooling)[0].eval(), tokenizer), expected,
                              atol=1e-3)


def test_a_mean_pooled_folder_refuses_to_load_without_its_code(tiny_models, tmp_path):
    """Without trust_remote_code transformers would build the first-token head: it must refuse instead."""
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", ["0.query"])
    folder = export.save_model(out)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling_ticketsearch.")
    assert (folder / export.MODELING_FILE).is_file()
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForSequenceClassification.from_pretrained(folder)


@pytest.mark.integration
def test_the_default_models_ticket_loads_to_the_same_logits(tmp_path):
    """all-MiniLM-L6-v2 pools by the mean: the model users take home must too (it read [CLS] before)."""
    out = make_export(tmp_path / "e", "minilm", "mean", [f"{layer}.attn.norm" for layer in range(6)] + ["5.value"])
    expected = apply_path_logits(out)
    folder = export.save_model(out)
    model = load_as_printed(folder, "mean")
    assert (logits(model, AutoTokenizer.from_pretrained(folder)) - expected).abs().max().item() <= 1e-5


def load_adapter_as_printed(out: Path):
    """The PEFT line `search.export` prints, executed: the adapter on the pre-trained model."""
    import peft

    import search

    line = adapter.adapter_load_line(out, Spec.load(out / SPEC_FILE))
    return eval(line, {"PeftModel": peft.PeftModel, "search": search,
                       "AutoModelForSequenceClassification": AutoModelForSequenceClassification}).eval()


@pytest.mark.parametrize("family,pooling", [("bert", "mean"), ("bert", "cls"), ("albert", "mean"),
                                            ("distilbert", "mean"), ("roberta", "mean"), ("electra", "cls"),
                                            ("deberta-v2", "cls"), ("mpnet", "mean")])
def test_peft_adapter_loads_onto_the_pretrained_model_to_the_same_logits(tiny_models, tmp_path, family, pooling):
    units = ["0.attn.norm", "0.ffn.norm", "0.value", "0.attn.out", "embeddings.norm"]  # ALBERT has one layer
    out = make_export(tmp_path / "e", tiny_models(family), pooling, units)
    expected = apply_path_logits(out)
    folder = export.save_adapter(out)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LN_TUNING" and config["base_model_name_or_path"] == tiny_models(family)
    # the adapter holds exactly what the ticket trains, the head included
    spec = Spec.load(out / SPEC_FILE)
    saved_whole = config["modules_to_save"]  # each head module once, PEFT's own names for a classifier's included
    assert len(saved_whole) == len(set(saved_whole)) and {"classifier", "score"} <= set(saved_whole)
    assert {n.split(".")[0] for n in spec.taxonomy().head} <= set(saved_whole)
    saved = load_file(str(folder / "adapter_model.safetensors"))
    assert sum(t.numel() for t in saved.values()) == spec.trainable_params
    model = load_adapter_as_printed(out)
    assert torch.allclose(logits(model, load_tokenizer(tiny_models(family))), expected, atol=1e-5, rtol=0)


def test_a_ticket_training_part_of_a_module_has_no_adapter(tiny_models, tmp_path):
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", ["0.attn.norm", "0.query:bias", "1.value:weight"])
    # the query's bias alone would be a BEFT adapter's; the value's weight alone no adapter carries
    with pytest.raises(UsageError, match=r"no PEFT adapter: it trains part of 1 module\(s\), "
                                         r"bert.encoder.layer.1.attention.self.value \(weight only\)"):
        export.save_adapter(out)
    assert not (out / adapter.ADAPTER_DIR).exists()
    # a weight and a bias that together make the whole module do fit
    whole = make_export(tmp_path / "w", tiny_models("bert"), "mean", ["0.query:bias", "0.query:weight"])
    assert adapter.check_adapter(Spec.load(whole / SPEC_FILE), load_taxonomy(tiny_models("bert"), 2, "mean"))[0] == [
        "bert.encoder.layer.0.attention.self.query"]


def test_a_failing_adapter_check_removes_the_adapter_folder(tiny_models, tmp_path, monkeypatch):
    """Never an adapter on disk that does not reproduce the ticket (here: a loader that drops the head)."""
    out = make_export(tmp_path / "e", tiny_models("bert"), "cls", ["0.attn.norm"])
    monkeypatch.setattr(adapter, "adapter_load_line", lambda out, spec: "search.load_base(%r)" % str(out))
    with pytest.raises(UsageError, match="PEFT adapter does not reproduce the ticket"):
        export.save_adapter(out)
    assert not (out / adapter.ADAPTER_DIR).exists()


@pytest.mark.integration
def test_the_default_models_adapter_loads_to_the_same_logits(tmp_path):
    out = make_export(tmp_path / "e", "minilm", "mean", [f"{layer}.attn.norm" for layer in range(6)] + ["5.value"])
    expected = apply_path_logits(out)
    export.save_adapter(out)
    model = load_adapter_as_printed(out)
    assert (logits(model, load_tokenizer("minilm")) - expected).abs().max().item() <= 1e-5


def test_a_head_only_ticket_is_an_adapter_too(tiny_models, tmp_path):
    out = make_export(tmp_path / "e", tiny_models("distilbert"), "mean", [])  # pre_classifier + classifier
    expected = apply_path_logits(out)
    export.save_adapter(out)
    model = load_adapter_as_printed(out)
    assert torch.allclose(logits(model, load_tokenizer(tiny_models("distilbert"))), expected, atol=1e-5, rtol=0)
