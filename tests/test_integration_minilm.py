"""The real MiniLM on the real Rotten Tomatoes snippets, with a tiny budget."""

import json

import pandas as pd
import pytest

from search import export, run
from spaces import Spec, load_taxonomy
from trainables import encode, evaluate, load_model, load_task, load_tensors, load_tokenizer

pytestmark = pytest.mark.integration


def test_minilm_search_and_export_round_trip(ray_session, tmp_path):
    sizes = ["--train-size", "96", "--eval-size", "64", "--test-size", "128", "--max-length", "32"]
    code = run.main(["--results-dir", str(tmp_path), "--name", "minilm", "--num-samples", "4",
                     "--max-epochs", "1", *sizes])
    assert code == 0
    run_dir = tmp_path / "minilm"
    trials = pd.read_parquet(run_dir / "trials.parquet")
    # the default's reference points: full fine-tuning, head only, all LayerNorms, BEFT's value biases
    assert set(trials["preset"]) == {"full", "head", "layernorm", "beft"}
    # all-MiniLM-L6-v2 pools by the mean (its folder says so): no pooler, 147,840 parameters fewer than BERT's head
    assert json.loads((run_dir / "run.json").read_text())["pooling"] == "mean"
    assert set(trials["trainable_params"]) == {22_713_986 - 147_840, 770, 770 + 13 * 768, 770 + 6 * 384}
    front = json.loads((run_dir / "frontier.json").read_text())
    assert front["points"][0]["trainable_params"] == 770  # head only is the cheapest point
    assert front["test"]["rows"] == 128 and all(p["test_metric"] is not None for p in front["points"])

    assert export.main([str(run_dir), "--out", str(tmp_path / "spec")]) == 0
    spec = Spec.load(tmp_path / "spec" / "spec.json")
    assert spec.model["pooling"] == "mean"
    model, _ = load_model("minilm", 2, spec.model["pooling"])
    spec.apply(model, load_taxonomy("minilm", 2, spec.model["pooling"]))
    load_tensors(model, tmp_path / "spec" / spec.tensors)
    task, splits = load_task()
    data = encode(task, splits, load_tokenizer("minilm"), 32, 96, 64, 128)
    assert evaluate(model, data.validation)["accuracy"] == pytest.approx(spec.metrics["accuracy"])
    assert evaluate(model, data.test)["accuracy"] == pytest.approx(spec.metrics["test_accuracy"])
