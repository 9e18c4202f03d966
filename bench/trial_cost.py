"""Epoch cost of sub-networks as a ratio to plain full fine-tuning of the same model, side by side.

    .venv/bin/python bench/trial_cost.py [--model minilm] [--rows 512] [--repeats 3] [--threads 1]

Each selection (full fine-tuning, all LayerNorms, the top layer, head only, one module type in
every layer) trains two epochs over the same rows with the trials' own code (`trainables.TrialRun`,
frozen-prefix caching on, as in a search), and the training seconds of each epoch are recorded:
the first includes computing the frozen prefix's outputs, the second is what every later epoch
costs. The baseline is the naive loop: everything trainable, no caching. Selections are
interleaved within each repeat so that machine noise hits them alike. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from spaces import load_taxonomy, reference_lr  # noqa: E402
from trainables import TrialRun, TrialSettings, encode, load_task, load_tokenizer  # noqa: E402


def selections(taxonomy) -> dict[str, list[str]]:
    top = taxonomy.num_layers - 1
    return {
        "full": [u.id for u in taxonomy.units],
        "layernorm": list(taxonomy.norm_units),
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
    data = encode(task, splits, load_tokenizer(args.model), 64, args.rows, 256)
    taxonomy = load_taxonomy(args.model, task.num_labels)
    chosen = selections(taxonomy)
    settings = TrialSettings(model=args.model, num_labels=task.num_labels, max_epochs=2, batch_size=args.batch_size)
    naive = TrialSettings(**{**settings.__dict__, "prefix_cache": False})
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in ["naive full", *chosen]}
    prefix_layers = {}
    for _ in range(args.repeats):
        for name in seconds:
            units = chosen["full" if name == "naive full" else name]
            config = {"units": units, "lr": reference_lr(taxonomy.count(units), taxonomy.total_params)}
            run = TrialRun.start(config, len(data.train), naive if name == "naive full" else settings,
                                 torch.device("cpu"))
            prefix_layers[name] = run.prefix.layers if run.prefix else 0
            first, second = (result["train_seconds"] for result in run.epochs(data, settings))
            seconds[name].append((first, second))

    base = statistics.median(s for pair in seconds["naive full"] for s in pair)
    print(f"{args.model}, {len(data.train)} rows x batch {args.batch_size}, {args.threads} thread(s), "
          f"median of {args.repeats} interleaved repeats; ratio to the naive full fine-tuning epoch ({base:.2f} s)")
    print(f"{'selection':<11} {'trainable':>11} {'cached layers':>13} {'epoch 1':>8} {'epoch 2+':>8}")
    for name, pairs in seconds.items():
        units = chosen["full" if name == "naive full" else name]
        first = statistics.median(p[0] for p in pairs) / base
        later = statistics.median(p[1] for p in pairs) / base
        print(f"{name:<11} {taxonomy.count(units):>11,} {prefix_layers[name]:>13} {first:>8.2f} {later:>8.2f}")


if __name__ == "__main__":
    main()
