"""Shared fixtures: offline settings, tiny randomly initialised models, one local Ray per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach a model hub
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import (
    AlbertConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    Gemma2Config,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    MPNetConfig,
    Olmo2Config,
    Phi3Config,
    Qwen2Config,
    Qwen3Config,
    RobertaConfig,
    RoFormerConfig,
    XLMRobertaConfig,
)

from spaces import resolve_model

_SIZE = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=128)
# One tiny config per architecture family; all use MiniLM's (BERT) vocabulary so one tokenizer serves.
TINY_CONFIGS = {
    "bert": lambda: BertConfig(**_SIZE),
    "roberta": lambda: RobertaConfig(**_SIZE),
    "xlm-roberta": lambda: XLMRobertaConfig(**_SIZE),
    "electra": lambda: ElectraConfig(**_SIZE, embedding_size=16),
    "albert": lambda: AlbertConfig(**_SIZE, embedding_size=16),
    "deberta-v2": lambda: DebertaV2Config(**_SIZE, relative_attention=True, position_buckets=8, share_att_key=False,
                                          norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"]),
    "mpnet": lambda: MPNetConfig(**_SIZE),
    "distilbert": lambda: DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                           max_position_embeddings=128),
    "roformer": lambda: RoFormerConfig(**_SIZE),  # no module map: generic discovery
}
_DECODER_SIZE = dict(_SIZE, num_attention_heads=4)
# Decoder-only families, tiny and random, with the test tokenizer's vocabulary; grouped-query attention where the
# family has it (key and value smaller than query).
TINY_DECODERS = {
    "llama": lambda: LlamaConfig(**_DECODER_SIZE, num_key_value_heads=2),
    "mistral": lambda: MistralConfig(**_DECODER_SIZE, num_key_value_heads=2),
    "qwen2": lambda: Qwen2Config(**_DECODER_SIZE, num_key_value_heads=2),  # biases on query, key and value only
    "qwen3": lambda: Qwen3Config(**_DECODER_SIZE, num_key_value_heads=2, head_dim=8),
    "gemma2": lambda: Gemma2Config(**_DECODER_SIZE, num_key_value_heads=2, head_dim=8),
    "gemma3_text": lambda: Gemma3TextConfig(**_DECODER_SIZE, num_key_value_heads=2, head_dim=8),
    "olmo2": lambda: Olmo2Config(**_DECODER_SIZE),
    "phi3": lambda: Phi3Config(**_DECODER_SIZE, num_key_value_heads=2, pad_token_id=0, bos_token_id=101,
                               eos_token_id=102),
    "gpt2": lambda: GPT2Config(vocab_size=30522, n_embd=32, n_layer=2, n_head=4, n_positions=128),
    "gpt_neox": lambda: GPTNeoXConfig(**_DECODER_SIZE),
}


def make_tiny_decoder(folder: Path, family: str, seed: int = 0, eos: bool = True) -> Path:
    """A randomly initialised decoder-only model with MiniLM's vocabulary and a tokenizer that has no padding
    token, as most decoder checkpoints have none (its end-of-sequence token is [SEP]; none with `eos=False`)."""
    torch.manual_seed(seed)
    AutoModel.from_config(TINY_DECODERS[family]()).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm"))
    tokenizer.pad_token = None
    tokenizer.eos_token = "[SEP]" if eos else None
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny(folder: Path, family: str, seed: int = 0, layers: int | None = None) -> Path:
    """A randomly initialised encoder of one family with MiniLM's tokenizer, as a plain HF folder."""
    torch.manual_seed(seed)
    config = TINY_CONFIGS[family]()
    if layers is not None:
        config.num_hidden_layers = layers
    AutoModel.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("minilm")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """family -> folder, built on first use."""
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(make_tiny(tmp_path_factory.mktemp(f"tiny-{family}"), family))
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory):
    """family -> folder of a tiny decoder, built on first use."""
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(make_tiny_decoder(tmp_path_factory.mktemp(f"tiny-{family}"), family))
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return str(make_tiny(tmp_path_factory.mktemp("tiny-bert"), "bert"))


@pytest.fixture(scope="session")
def tiny_bert_3_layers(tmp_path_factory) -> str:
    return str(make_tiny(tmp_path_factory.mktemp("tiny-bert-3"), "bert", layers=3))


def load_bench(name: str):
    """A script of bench/ as a module (bench/ is a package: its scripts import each other as bench.NAME)."""
    import importlib

    return importlib.import_module(f"bench.{name}")


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
def ray_session():
    """One local Ray for the whole suite: each start costs seconds and ~1 GB."""
    import ray

    # short: Ray's socket paths are limited to 107 bytes, and pytest-xdist's temp folders are deep
    temp = Path("/tmp") / f"ts-ray-{os.getpid()}"
    os.environ["RAY_TMPDIR"] = str(temp)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class RayProcesses:
    """Ray nodes started with `ray start` in their own temp dir, on ports chosen here, so they never
    collide with the suite's own Ray; on exit every process of theirs is killed (a SIGKILLed driver
    leaves Ray's agents behind, and nothing may outlive a test)."""

    def __init__(self):
        import os

        self.temp = Path("/tmp") / f"ts-ray-{os.getpid()}-{_free_port()}"  # short: socket paths are limited
        self.address = None

    def _start(self, args, env=None, cwd=None):
        import subprocess
        import sys

        ports = [f"--{name}={_free_port()}" for name in (
            "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
            "runtime-env-agent-port", "node-manager-port", "object-manager-port")]
        ray_bin = Path(sys.executable).parent / "ray"
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})}
        done = subprocess.run([str(ray_bin), "start", *args, f"--temp-dir={self.temp}", "--disable-usage-stats",
                               *ports], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start_head(self, num_cpus: int, env=None) -> str:
        from ray.util import get_node_ip_address

        port = _free_port()
        self._start(["--head", f"--port={port}", f"--num-cpus={num_cpus}", "--include-dashboard=false"], env=env)
        self.address = f"{get_node_ip_address()}:{port}"
        return self.address

    def add_worker(self, num_cpus: int, env=None, cwd=None) -> None:
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}"], env=env, cwd=cwd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import shutil
        import signal

        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(self.temp).encode() in cmdline.read_bytes():
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.temp, ignore_errors=True)


# The slow lane: what needs a real Ray (a search end to end, faults, clusters, remote workers), the real MiniLM,
# or a process of its own. `pytest -m "not slow"` is the fast lane for an edit-test loop; the README's command
# and CI run both lanes.
SLOW_MODULES = frozenset({"test_cluster", "test_faults", "test_remote_worker", "test_resume", "test_storage",
                          "test_integration_minilm", "test_k8s_cluster"})
SLOW_FIXTURES = frozenset({"ray_session"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if (module in SLOW_MODULES or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or item.get_closest_marker("integration")):
            item.add_marker(pytest.mark.slow)
