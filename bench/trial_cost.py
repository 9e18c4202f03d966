"""Epoch cost of sub-networks as a ratio to full fine-tuning of the same model, measured side by side.

    .venv/bin/python bench/trial_cost.py [--model minilm] [--rows 512] [--repeats 3] [--threads 1]

For each selection (full fine-tuning, all LayerNorms, the top layer, head only, one module type
in every layer) one training epoch over the same rows is timed with the trials' own training step
(`trainables.train_epoch`), the selections interleaved within each repeat so that machine noise
hits them alike. Prints the median seconds per epoch and its ratio to full fine-tuning.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from spaces import load_taxonomy  # noqa: E402
from trainables import encode, load_model, load_task, load_tokenizer, train_epoch  # noqa: E402


def selections(taxonomy) -> dict[str, list[str]]:
    top = taxonomy.num_layers - 1
    return {
        "full": [u.id for u in taxonomy.units],
        "layernorm": [u.id for u in taxonomy.units if u.module in (*taxonomy.norm_types, "embeddings.norm")],
        "top layer": [u.id for u in taxonomy.units if u.layer == top],
        "head only": [],
        "value": [u.id for u in taxonomy.units if u.module == "value"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a trial gets 1 by default)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task, splits = load_task()
    data = encode(task, splits, load_tokenizer(args.model), 64, args.rows, 8)
    taxonomy = load_taxonomy(args.model, task.num_labels)
    chosen = selections(taxonomy)
    seconds: dict[str, list[float]] = {name: [] for name in chosen}
    for repeat in range(args.repeats):
        for name, units in chosen.items():
            torch.manual_seed(0)
            model, _ = load_model(args.model, task.num_labels)
            taxonomy.apply(model, units)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
            started = time.perf_counter()
            train_epoch(model, optimizer, schedule, data.train, args.batch_size, seed=repeat)
            seconds[name].append(time.perf_counter() - started)

    full = statistics.median(seconds["full"])
    print(f"{args.model}, {len(data.train)} rows x batch {args.batch_size}, {args.threads} thread(s), "
          f"median of {args.repeats} interleaved repeats")
    print(f"{'selection':<11} {'trainable':>11} {'s/epoch':>8} {'x full':>7}")
    for name, units in chosen.items():
        median = statistics.median(seconds[name])
        print(f"{name:<11} {taxonomy.count(units):>11,} {median:>8.2f} {median / full:>7.2f}")


if __name__ == "__main__":
    main()
