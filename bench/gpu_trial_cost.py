"""Trial throughput on one GPU: samples/s of full fine-tuning vs small sub-networks, and packing.

    python3 bench/gpu_trial_cost.py [--rows 2048] [--seq 16-128] [--procs 1,2,4,8]   (or bench/gpu_trial_cost.sh)

A bert-base-sized model is built from its config with random weights (no hub is needed; speed
does not depend on the weights). Each sub-network trains one epoch over the same synthetic rows
(random token ids, lengths uniform in the `--seq` range) with the trials' own code
(`trainables.TrialRun`: dynamic padding, length buckets, bf16 autocast on GPU, frozen-prefix
caching; "naive full" turns the cache off), after a warm-up epoch over the same batches (steady
state: a trial's epochs after its first, the frozen prefix's outputs already cached). Then K processes
train small sub-networks (all LayerNorms) at once on the one GPU, as `--gpus-per-trial 1/K`
would pack them, and their aggregate samples/s is reported.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from spaces import load_taxonomy, reference_lr  # noqa: E402
from trainables import Encoded, Split, TrialRun, TrialSettings  # noqa: E402


def synthetic(rows: int, low: int, high: int, vocab: int, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(low, high + 1, rows).astype(np.int32)
    ids = rng.integers(1000, vocab, (rows, high)).astype(np.int32)
    ids[np.arange(high)[None, :] >= lengths[:, None]] = 0
    return Split(ids, np.zeros_like(ids, dtype=np.int8), lengths, rng.integers(0, 2, rows).astype(np.int64))


def selections(taxonomy) -> dict[str, list[str]]:
    top = taxonomy.num_layers - 1
    return {
        "full": [u.id for u in taxonomy.units],
        "value": [u.id for u in taxonomy.units if u.module == "value"],
        "top layer": [u.id for u in taxonomy.units if u.layer == top],
        "layernorm": list(taxonomy.norm_units),
        "head only": [],
    }


def timed_epoch(model_dir: str, units: list[str], data: Encoded, batch_size: int,
                before_timing=lambda: None, cache: bool = True) -> tuple[float, float, int]:
    """(start, end, params) of one epoch timed after a warm-up epoch over the same batches.

    The warm-up sees every batch shape the timed epoch will (dynamic padding makes many), so
    the allocator and kernel choices are settled: the figure is a trial's steady state.
    """
    taxonomy = load_taxonomy(model_dir, 2)
    settings = TrialSettings(model=model_dir, num_labels=2, max_epochs=2, batch_size=batch_size, prefix_cache=cache)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lr = reference_lr(taxonomy.count(units), taxonomy.total_params)
    run = TrialRun.start({"units": units, "lr": lr}, len(data.train), settings, device)
    from trainables import train_epoch

    train_epoch(run.model, run.optimizer, run.schedule, data.train, batch_size, seed=2, prefix=run.prefix)
    if device.type == "cuda":
        torch.cuda.synchronize()
    before_timing()
    started = time.perf_counter()
    train_epoch(run.model, run.optimizer, run.schedule, data.train, batch_size, seed=2, prefix=run.prefix)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return started, time.perf_counter(), run.trainable_params


def _packed_worker(model_dir, units, data_path, batch_size, barrier, results):
    torch.set_num_threads(1)
    data = Encoded.load(data_path)
    # every process has loaded and warmed up its model before any starts timing: the epochs overlap
    results.put(timed_epoch(model_dir, units, data, batch_size, barrier.wait)[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--seq", default="16-128", help="token lengths LOW-HIGH")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model (to try the script on a CPU)")
    args = parser.parse_args()
    from transformers import BertConfig, BertForSequenceClassification

    low, high = map(int, args.seq.split("-"))
    config = BertConfig(num_labels=2) if not args.tiny else BertConfig(
        num_labels=2, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = str(Path(scratch) / "bert-base-random")
        torch.manual_seed(0)
        BertForSequenceClassification(config).save_pretrained(model_dir)
        split = synthetic(args.rows, low, high, config.vocab_size)
        data = Encoded(split, split, split, 0)
        data_path = str(Path(scratch) / "data.npz")
        data.save(data_path)
        taxonomy = load_taxonomy(model_dir, 2)
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
        print(f"{name}, torch {torch.__version__}; {'tiny' if args.tiny else 'bert-base'}-sized BERT "
              f"({taxonomy.total_params:,} params, random weights), "
              f"{args.rows} rows, lengths {low}-{high}, batch {args.batch_size}, bf16 autocast on GPU")
        print(f"{'selection':<11} {'trainable':>12} {'samples/s':>10} {'x naive':>7}")
        rates = {}
        chosen = selections(taxonomy)
        for label, units in {"naive full": chosen["full"], **chosen}.items():
            started, ended, params = timed_epoch(model_dir, units, data, args.batch_size, cache=label != "naive full")
            rates[label] = args.rows / (ended - started)
            print(f"{label:<11} {params:>12,} {rates[label]:>10.0f} {rates[label] / rates['naive full']:>7.2f}",
                  flush=True)

        units = selections(taxonomy)["layernorm"]
        print(f"\nlayernorm trials packed on one device (K processes, each {args.rows} rows):")
        print(f"{'K':>3} {'aggregate samples/s':>20} {'per trial':>10} {'x one':>6}")
        context = multiprocessing.get_context("spawn")
        single = None
        for k in map(int, args.procs.split(",")):
            barrier, results = context.Barrier(k), context.Queue()
            procs = [context.Process(target=_packed_worker,
                                     args=(model_dir, units, data_path, args.batch_size, barrier, results))
                     for _ in range(k)]
            for p in procs:
                p.start()
            spans = [results.get() for _ in range(k)]
            for p in procs:
                p.join()
            wall = max(e for _, e in spans) - min(s for s, _ in spans)
            aggregate = k * args.rows / wall
            single = single or aggregate
            print(f"{k:>3} {aggregate:>20.0f} {aggregate / k:>10.0f} {aggregate / single:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
