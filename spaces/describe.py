"""`python -m spaces.describe MODEL`: the units of a model and what each one costs to train.

Counts come from the model's config alone (weights are not loaded). MODEL is an alias
(`minilm`), a local folder or a hub id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from spaces._errors import UsageError
from spaces._space import GRANULARITIES, switches
from spaces._taxonomy import load_taxonomy


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def describe(model: str, granularity: str = "unit", num_labels: int = 2) -> dict:
    taxonomy = load_taxonomy(model, num_labels)
    total = taxonomy.total_params
    rows = []
    for name, unit_ids in switches(taxonomy, granularity).items():
        names = [n for u in unit_ids for n in taxonomy.unit(u).params]
        bias = sum(taxonomy.param_numel[n] for n in names if n.rsplit(".", 1)[-1] == "bias")
        weight = sum(taxonomy.param_numel[n] for n in names) - bias
        rows.append({"switch": name, "units": list(unit_ids), "weight_params": weight, "bias_params": bias,
                     "params": weight + bias, "fraction": (weight + bias) / total})
    return {
        "model": model,
        "model_type": taxonomy.model_type,
        "architecture": taxonomy.architecture,
        "layers": taxonomy.num_layers,
        "granularity": granularity,
        "total_params": total,
        "head_params": taxonomy.head_params,
        "unassigned_params": sum(taxonomy.param_numel[n] for n in taxonomy.unassigned),
        "fingerprint": taxonomy.fingerprint,
        "switches": rows,
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = _Parser(prog="python -m spaces.describe", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="unit")
    parser.add_argument("--num-labels", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    try:
        args = parser.parse_args(argv)
        info = describe(args.model, args.granularity, args.num_labels)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['model']}: {info['architecture']}, {info['layers']} layers, {info['total_params']:,} parameters "
          f"(head {info['head_params']:,}, always trainable)")
    print(f"{'switch':<18} {'weights':>12} {'biases':>9} {'total':>12} {'fraction':>9}")
    for row in info["switches"]:
        print(f"{row['switch']:<18} {row['weight_params']:>12,} {row['bias_params']:>9,} {row['params']:>12,} "
              f"{row['fraction']:>9.4%}")
    if info["unassigned_params"]:
        print(f"not in any unit (always frozen): {info['unassigned_params']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
