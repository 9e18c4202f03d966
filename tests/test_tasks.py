"""Task shapes (single sentence, pairs, regression, multi-class, GLUE from local files), their metrics, bad data."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from search import run
from spaces import UsageError
from trainables import (
    Encoded,
    TrialRun,
    TrialSettings,
    compute_metrics,
    constant_baseline,
    encode,
    load_task,
    load_tokenizer,
)

WORDS = ["movie", "plot", "actor", "scene", "story", "music", "film", "ending"]


def _texts(rng, n):
    return [" ".join(rng.choice(WORDS, 6)) for _ in range(n)]


# ---- metrics against hand-computed values --------------------------------------------------------------------

def test_classification_metrics_by_hand():
    labels = np.array([0, 1, 1, 0])
    logits = np.eye(2)[[0, 1, 0, 0]]  # one positive missed: tp=1 tn=2 fp=0 fn=1
    m = compute_metrics(logits, labels, regression=False)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(2 / 3)  # precision 1, recall 1/2
    assert m["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))  # (1*2 - 0*1) / sqrt(1*2*2*3)


def test_multiclass_f1_is_macro_by_hand():
    labels = np.array([0, 1, 2, 2])
    logits = np.eye(3)[[0, 2, 2, 2]]  # class 0: F1 1; class 1: 0; class 2: p 2/3, r 1 -> 0.8
    assert compute_metrics(logits, labels, regression=False)["f1"] == pytest.approx((1 + 0 + 0.8) / 3)


def test_regression_metrics_by_hand():
    m = compute_metrics(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 4.0]), regression=True)
    assert m["pearson"] == pytest.approx(3 / math.sqrt(2 * 42 / 9))  # cov 3, sum sq 2 and 42/9
    assert m["spearman"] == pytest.approx(1.0)  # same order
    constant = compute_metrics(np.zeros((3, 1)), np.array([1.0, 2.0, 4.0]), regression=True)
    assert constant == {"pearson": 0.0, "spearman": 0.0}  # undefined correlation counts as none


def test_constant_baselines():
    train, validation = np.array([1, 1, 0]), np.array([1, 0, 1, 1])
    base = constant_baseline(train, validation, regression=False)
    assert base["accuracy"] == 0.75 and base["matthews_correlation"] == 0.0
    assert base["f1"] == pytest.approx(2 * 0.75 / 1.75)  # precision 3/4, recall 1
    assert constant_baseline(np.array([1.0, 2.0]), np.array([0.5, 3.0]), regression=True)["pearson"] == 0.0


# ---- task shapes, trained one epoch with the trials' own code ------------------------------------------------

def _one_epoch(task, splits, model):
    data = encode(task, splits, load_tokenizer(model), max_length=16)
    settings = TrialSettings(model=model, num_labels=task.num_labels, max_epochs=1, metric=task.metric,
                             batch_size=16)
    run_ = TrialRun.start({"units": [], "lr": 1e-3}, len(data.train), settings, torch.device("cpu"))
    return data, next(run_.epochs(data, settings)), run_


def test_sentence_pairs_and_multiclass(tmp_path, tiny_bert):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"premise": _texts(rng, 120), "hypothesis": _texts(rng, 120),
                          "gold": ["entail", "neutral", "contradict"] * 40})
    frame.to_json(tmp_path / "nli.jsonl", orient="records", lines=True)
    task, splits = load_task(data=tmp_path / "nli.jsonl", text_column="premise", text_pair_column="hypothesis",
                             label_column="gold")
    assert task.num_labels == 3 and task.metric == "accuracy" and task.label_names == ("contradict", "entail",
                                                                                          "neutral")
    data, result, trained = _one_epoch(task, splits, tiny_bert)
    assert data.train.token_type_ids.max() == 1  # two segments
    assert {"accuracy", "f1", "matthews_correlation", "eval_loss"} <= set(result)
    assert result[task.metric] == result["accuracy"]


def test_regression_from_a_local_file(tmp_path, tiny_bert):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": _texts(rng, 120), "b": _texts(rng, 120), "score": rng.uniform(0, 5, 120).round(2)})
    frame.to_parquet(tmp_path / "sts.parquet")
    task, splits = load_task(data=tmp_path / "sts.parquet", text_column="a", text_pair_column="b",
                             label_column="score", regression=True)
    assert task.num_labels == 1 and task.metric == "pearson" and task.metrics == ("pearson", "spearman")
    data, result, trained = _one_epoch(task, splits, tiny_bert)
    assert data.train.labels.dtype == np.float32
    # the reported correlations are scipy's, of the trained model's predictions on validation
    from scipy.stats import pearsonr, spearmanr

    from trainables import predict

    outputs = predict(trained.model, data.validation, prefix=trained.prefix)[0].reshape(-1)
    assert result["pearson"] == pytest.approx(pearsonr(outputs, data.validation.labels)[0], abs=1e-6)
    assert result["spearman"] == pytest.approx(spearmanr(outputs, data.validation.labels)[0], abs=1e-6)
    assert np.isfinite(result["eval_loss"])
    assert data.baseline("pearson") == 0.0


def test_metric_can_be_chosen_and_must_fit_the_task(text_csv):
    task, _ = load_task(data=text_csv, text_column="review", label_column="sentiment", metric="f1")
    assert task.metric == "f1"
    with pytest.raises(UsageError, match="does not fit"):
        load_task(data=text_csv, text_column="review", label_column="sentiment", metric="pearson")


# ---- GLUE from a local folder -----------------------------------------------------------------------------

def _glue_folder(root, rng):
    mnli = root / "mnli"
    mnli.mkdir(parents=True)
    for split, n in (("train", 60), ("validation_matched", 30), ("validation_mismatched", 24)):
        pd.DataFrame({"premise": _texts(rng, n), "hypothesis": _texts(rng, n), "label": [0, 1, 2] * (n // 3),
                      "idx": range(n)}).to_parquet(mnli / f"{split}-00000-of-00001.parquet")
    cola = root / "cola"
    cola.mkdir()
    for split, n in (("train", 40), ("dev", 20)):
        pd.DataFrame({"sentence": _texts(rng, n), "label": ["acceptable", "unacceptable"] * (n // 2)}).to_csv(
            cola / f"{split}.tsv", sep="\t", index=False)
    stsb = root / "stsb"
    stsb.mkdir()
    for split, n in (("train", 30), ("validation", 20)):
        pd.DataFrame({"sentence1": _texts(rng, n), "sentence2": _texts(rng, n),
                      "label": rng.uniform(0, 5, n)}).to_json(stsb / f"{split}.jsonl", orient="records", lines=True)
    return root


def test_glue_tasks_from_a_data_dir(tmp_path, tiny_bert):
    root = _glue_folder(tmp_path / "glue", np.random.default_rng(2))
    task, splits = load_task("mnli", data_dir=root)
    assert task.metric == "accuracy" and task.extra_validation == ("mismatched",) and task.num_labels == 3
    # the search validates on 10% of the training rows; the official validation split is the test
    assert len(splits["train"]) == 54 and len(splits["validation"]) == 6 and len(splits["test"]) == 30
    assert len(splits["mismatched"]) == 24 and task.test_split == "validation_matched"
    data, result, trained = _one_epoch(task, splits, tiny_bert)
    assert len(data.test) == 30 and len(data.extra["mismatched"]) == 24
    assert {"accuracy", "accuracy_mismatched", "f1_mismatched"} <= set(result)

    cola, splits = load_task("cola", data_dir=root)  # label names instead of ids, dev.tsv for validation
    assert cola.metric == "matthews_correlation" and len(splits["test"]) == 20 and len(splits["validation"]) == 4
    assert sorted(set(splits["train"]["label"])) == [0, 1]

    stsb, splits = load_task("stsb", data_dir=root / "stsb")  # the task's own folder works too
    assert stsb.regression and stsb.metric == "pearson" and stsb.text_pair_column == "sentence2"

    path = tmp_path / "tokenised.npz"  # a GLUE task's tokenised data travels whole (extra splits too)
    data.save(path)
    again = Encoded.load(path)
    assert np.array_equal(again.test.labels, data.test.labels)
    assert np.array_equal(again.extra["mismatched"].labels, data.extra["mismatched"].labels)


# ---- bad data: one clear line ------------------------------------------------------------------------------

@pytest.mark.parametrize("frame, kwargs, message", [
    ({"review": ["good", " ", "bad"] * 10, "sentiment": ["p", "n", "p"] * 10}, {}, "10 row.s. have empty text"),
    ({"review": ["good"] * 30, "sentiment": ["1.5", "x", "2"] * 10}, {"regression": True}, "numeric labels.*'x'"),
    ({"review": ["good"] * 30, "sentiment": [None, "p", "n"] * 10}, {}, "no label"),
])
def test_bad_data_is_one_clear_error(tmp_path, frame, kwargs, message):
    pd.DataFrame(frame).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UsageError, match=message):
        load_task(data=tmp_path / "bad.csv", text_column="review", label_column="sentiment", **kwargs)


def test_bad_glue_folders(tmp_path):
    root = _glue_folder(tmp_path / "glue", np.random.default_rng(3))
    with pytest.raises(UsageError, match="no train file for GLUE 'rte'"):
        load_task("rte", data_dir=root)
    bad = pd.DataFrame({"sentence": ["a b"] * 4, "label": ["maybe", "acceptable"] * 2})
    bad.to_csv(root / "cola" / "dev.tsv", sep="\t")
    with pytest.raises(UsageError, match="label 'maybe'"):
        load_task("cola", data_dir=root)


def test_bad_data_exits_2_from_the_command_line(tmp_path, capsys):
    pd.DataFrame({"review": ["good film"] * 30, "sentiment": ["high", "low", "3"] * 10}).to_csv(
        tmp_path / "bad.csv", index=False)
    code = run.main(["--data", str(tmp_path / "bad.csv"), "--text-column", "review", "--label-column", "sentiment",
                     "--regression", "--results-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "numeric labels" in err[0]


def test_glue_search_validation_is_split_off_the_training_rows(tmp_path):
    """Deterministic, stratified and disjoint: the official validation split is left for the test."""
    rng = np.random.default_rng(3)
    root = tmp_path / "glue" / "sst2"
    root.mkdir(parents=True)
    labels = [0] * 300 + [1] * 100  # 25% positive
    pd.DataFrame({"sentence": [f"train sentence {i} " + " ".join(rng.choice(["a", "b", "c"], 4)) for i in range(400)],
                  "label": labels}).to_csv(root / "train.tsv", sep="\t", index=False)
    pd.DataFrame({"sentence": [f"official validation {i}" for i in range(60)],
                  "label": [0, 1] * 30}).to_csv(root / "dev.tsv", sep="\t", index=False)
    task, splits = load_task("sst2", data_dir=tmp_path / "glue")
    again = load_task("sst2", data_dir=tmp_path / "glue")[1]
    assert splits["validation"]["sentence"] == again["validation"]["sentence"]  # the same rows every time
    assert task.test_split == "validation"
    assert splits["test"]["sentence"] == [f"official validation {i}" for i in range(60)]
    validation, train = splits["validation"], splits["train"]
    assert len(validation) == 40 and len(train) == 360  # min(official validation, 10% of train)
    assert sum(validation["label"]) == 10  # stratified: 25% positive, as in the training rows
    assert not set(validation["sentence"]) & set(train["sentence"])
    assert not set(validation["sentence"]) & set(splits["test"]["sentence"])
