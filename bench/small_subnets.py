"""Why small sub-networks stay at the majority class, measured: pooling, per-group rates, steps.

    .venv/bin/python bench/small_subnets.py [--data FILE --text-column C --label-column L]
        [--variants cls,mean,mean+groups] [--points head,layernorm,bitfit,query,value,full]
        [--train-size 768] [--batch-size 32] [--epochs 3] [--seeds 0] [--out bench/results/X.json]

Each reference point of the paper (head only, all LayerNorms, BitFit, one module type in every
layer, full fine-tuning) trains with the trials' own code (`trainables.TrialRun`, frozen-prefix
caching on) under each variant, at the learning rate a search gives it (`spaces.reference_lr`),
and is scored on validation and on the test split. Variants:

- `cls`: the architecture's own head (first token through BERT's pooler);
- `mean`: mean pooling over the last layer's tokens (what sentence-transformers checkpoints use);
- `+head`: the new head at no less than `SMALL_PARAM_LR` (trainables._finetune, `--lr-groups`).

Prints one row per (point, variant) with the median over seeds, and writes every run to JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from spaces import load_taxonomy, presets, reference_lr, refs_from_switches, switches  # noqa: E402
from trainables import TrialRun, TrialSettings, encode, evaluate, load_task, load_tokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=None)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--variants", default="cls,mean,mean+head")
    parser.add_argument("--points", default="head,layernorm,bitfit,query,value,full")
    parser.add_argument("--train-size", type=int, default=768)
    parser.add_argument("--eval-size", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task, splits = load_task(data=args.data, text_column=args.text_column, label_column=args.label_column)
    data = encode(task, splits, load_tokenizer(args.model), 64, args.train_size, args.eval_size)
    majority = data.baseline("accuracy")
    print(f"{task.name}: {len(data.train)} train / {len(data.validation)} validation / {len(data.test)} test rows; "
          f"majority class {majority:.4f}; batch {args.batch_size}, {args.epochs} epochs", flush=True)
    runs = []
    for variant in args.variants.split(","):
        pooling, _, extra = variant.partition("+")
        taxonomy = load_taxonomy(args.model, task.num_labels, pooling)
        points = presets(taxonomy, "module")
        units = switches(taxonomy, "module")
        for point in args.points.split(","):
            refs = refs_from_switches(units, points[point])
            lr = reference_lr(taxonomy.count(refs), taxonomy.total_params)
            for seed in map(int, args.seeds.split(",")):
                settings = TrialSettings(model=args.model, num_labels=task.num_labels, max_epochs=args.epochs,
                                         batch_size=args.batch_size, seed=seed, threads=args.threads,
                                         pooling=pooling, lr_groups=extra == "head")
                started = time.perf_counter()
                run = TrialRun.start({"units": refs, "lr": lr, "lr_scale": 1.0}, len(data.train), settings,
                                     torch.device("cpu"))
                curve = [r["accuracy"] for r in run.epochs(data, settings)]
                test = evaluate(run.model, data.test, prefix=run.prefix)["accuracy"]
                runs.append({"variant": variant, "point": point, "seed": seed, "lr": lr,
                             "trainable_params": run.trainable_params, "validation": curve, "test": test,
                             "seconds": time.perf_counter() - started})
                print(f"{variant:<12} {point:<10} seed {seed}: validation {' '.join(f'{v:.3f}' for v in curve)}"
                      f"  test {test:.3f}  ({runs[-1]['seconds']:.0f} s)", flush=True)
    print(f"\nmedian over seeds (majority class {majority:.4f}): test accuracy")
    variants = args.variants.split(",")
    print(f"{'point':<10}" + "".join(f"{v:>14}" for v in variants))
    for point in args.points.split(","):
        cells = [statistics.median(r["test"] for r in runs if r["point"] == point and r["variant"] == v)
                 for v in variants]
        print(f"{point:<10}" + "".join(f"{c:>14.4f}" for c in cells))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "task": task.name, "majority": majority,
                                              "rows": {"train": len(data.train), "validation": len(data.validation),
                                                       "test": len(data.test)},
                                              "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
