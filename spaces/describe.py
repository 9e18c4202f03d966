"""`python -m spaces.describe MODEL`: the units of a model and what each one costs to train.

With `--spec spec.json`, checks instead that a spec fits MODEL (exit code 2 if not).

Counts come from the model's config alone (weights are not loaded). MODEL is an alias
(`minilm`), a local folder or a hub id.
"""

from __future__ import annotations

import json
import os
import sys

from spaces._cli import ArgumentParser, UsageError, run_cli
from spaces._models import resolve_model
from spaces._pooling import POOLINGS, resolve_pooling
from spaces._space import GRANULARITIES, switches
from spaces._spec import Spec
from spaces._taxonomy import load_taxonomy


def describe(model: str, granularity: str = "unit", num_labels: int = 2, pooling: str = "auto") -> dict:
    """The model's switches at `granularity` with their parameter counts. `lora_params_per_rank`: what a LoRA
    adapter of rank 1 on the switch's linear layers adds (rank r adds r times as many; 0: nothing to adapt)."""
    pooling = resolve_pooling(pooling, resolve_model(model))
    taxonomy = load_taxonomy(model, num_labels, pooling)
    total = taxonomy.total_params
    rows = []
    for name, unit_ids in switches(taxonomy, granularity).items():
        names = [n for u in unit_ids for n in taxonomy.unit(u).params]
        bias = sum(taxonomy.param_numel[n] for n in names if n.rsplit(".", 1)[-1] == "bias")
        weight = sum(taxonomy.param_numel[n] for n in names) - bias
        # one place for the count: the taxonomy's, of a rank-1 adapter on each of the switch's linear units
        per_rank = taxonomy.count([f"{u}:lora1" for u in unit_ids if u in taxonomy.lora_units]) - taxonomy.head_params
        rows.append({"switch": name, "units": list(unit_ids), "weight_params": weight, "bias_params": bias,
                     "params": weight + bias, "fraction": (weight + bias) / total, "lora_params_per_rank": per_rank})
    return {
        "model": model,
        "model_type": taxonomy.model_type,
        "architecture": taxonomy.architecture,
        "layers": taxonomy.num_layers,
        "layer_applications": taxonomy.layer_applications,
        "generic": taxonomy.generic,
        "granularity": granularity,
        "total_params": total,
        "head_params": taxonomy.head_params,
        "unassigned_params": sum(taxonomy.param_numel[n] for n in taxonomy.unassigned),
        "fingerprint": taxonomy.fingerprint,
        "pooling": pooling,
        "switches": rows,
    }


def _check_spec(model: str, path: str, as_json: bool) -> int:
    spec = Spec.load(path)
    taxonomy = load_taxonomy(model, spec.model.get("num_labels", 2), spec.pooling)
    spec.validate(taxonomy)
    if as_json:
        print(json.dumps({"model": model, "valid": True, "units": spec.units,
                          "trainable_params": spec.trainable_params}, indent=2))
        return 0
    print(f"{path} fits {model}: {len(spec.units)} units, {spec.trainable_params:,} trainable parameters "
          f"({spec.trainable_params / taxonomy.total_params:.4%}), metrics {spec.metrics}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = ArgumentParser(prog="python -m spaces.describe", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="unit")
    parser.add_argument("--num-labels", type=int, default=2)
    parser.add_argument("--pooling", choices=POOLINGS, default="auto",
                        help="what the head reads (mean pooling has no pooler unit); auto: the folder's own")
    parser.add_argument("--lora-rank", type=int, default=8, metavar="R",
                        help="the LoRA rank whose adapter sizes the table shows (default 8)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--spec", help="check that this spec.json fits MODEL and show what it trains")

    def body() -> int:
        args = parser.parse_args(argv)
        if args.lora_rank < 1:
            raise UsageError(f"--lora-rank must be at least 1 (got {args.lora_rank})")
        if args.spec:
            return _check_spec(args.model, args.spec, args.json)
        info = describe(args.model, args.granularity, args.num_labels, args.pooling)
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        print(f"{info['model']}: {info['architecture']}, {info['layers']} layers, {info['total_params']:,} parameters "
              f"(head {info['head_params']:,}, always trainable; {info['pooling']} pooling)")
        if info["layer_applications"] != info["layers"]:
            print(f"one set of layer weights is shared across {info['layer_applications']} layers: "
                  "its units are shared, and counted once")
        if info["generic"]:
            print(f"no module map for model type '{info['model_type']}': units found by generic discovery "
                  "(the modules inside the repeated layer list, named by their own paths)")
        lora = f"lora r{args.lora_rank}"
        print(f"{'switch':<18} {'weights':>12} {'biases':>9} {'total':>12} {'fraction':>9} {lora:>10}")
        for row in info["switches"]:
            adapter = row["lora_params_per_rank"] * args.lora_rank
            print(f"{row['switch']:<18} {row['weight_params']:>12,} {row['bias_params']:>9,} {row['params']:>12,} "
                  f"{row['fraction']:>9.4%} {f'{adapter:,}' if adapter else '-':>10}")
        print("lora rR: a rank-R LoRA adapter on the switch's linear layers, R x (in + out) each "
              "(--switch-values ...,lora)")
        if info["unassigned_params"]:
            print(f"not in any unit (always frozen): {info['unassigned_params']:,}")
        return 0


    return run_cli(body)

if __name__ == "__main__":
    sys.exit(main())
