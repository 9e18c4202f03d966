"""Shared fixtures: offline settings, tiny randomly initialised models, one local Ray per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach a model hub
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification  # noqa: E402

from spaces import resolve_model  # noqa: E402


def make_tiny_bert(folder: Path, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """A randomly initialised BERT with MiniLM's tokenizer, saved as a plain HF folder."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128,
    )
    BertForSequenceClassification(config).bert.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("minilm")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_bert_3_layers(tmp_path_factory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-3"), layers=3))


def make_text_file(path: Path, rows: int = 120, classes=("pos", "neg"), seed: int = 0) -> Path:
    """A small learnable text-classification file: the label is given away by a keyword."""
    rng = np.random.default_rng(seed)
    words = ["movie", "plot", "actor", "scene", "story", "music", "film", "ending"]
    cues = {c: w for c, w in zip(classes, ["great", "awful", "fine", "odd", "grand"])}
    labels = [classes[i % len(classes)] for i in range(rows)]
    texts = [" ".join([*rng.choice(words, 5), cues[label], *rng.choice(words, 3)]) for label in labels]
    frame = pd.DataFrame({"review": texts, "sentiment": labels})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory) -> Path:
    return make_text_file(tmp_path_factory.mktemp("data") / "reviews.csv")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """One local Ray for the whole suite: each start costs seconds and ~1 GB."""
    import ray

    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
