"""How a proposal's learning rate should be set, and where early stopping may first decide: measured on tables.

    .venv/bin/python bench/rates_and_rungs.py [--product TABLE ...] [--curves TABLE ...] [--out bench/results]

Two questions of issue "The search users run is the search that is proven", answered from recorded trainings:

1. **The rate rule.** A product-space table (`bench/record_table.py --space product`: the product's own
   switches, off/bias/all per module type, reference points and spread selections, each trained at several
   scales of the size rule's rate `spaces.reference_lr`) says, per selection, what each scale gives. A
   rule that draws the scale log-uniformly from [LOW, HIGH] gives a proposal the mean over the recorded
   scales inside that range (the grid stands in for the log-uniform draw). Reported per rule, over the
   table's selections: the mean final metric, the mean shortfall from the selection's best recorded scale,
   the share of proposals still at the majority class after epoch 1 and at the end, and the share within
   0.01 of the best scale.

2. **The first rung.** On every table given (`--curves`: any recorded table, seed 0; product tables at the
   size rule's rate, scale 1), the trainings arrive in a random order, as a search's do, at the product's
   own scheduler (`search.make_scheduler("pareto-asha", ..., grace_period=G, second_chance=False)`), which
   decides at its rung. A *false stop* is a stopped training that ends on the table's final front (its
   final metric and parameters are non-dominated among the table's trainings). Reported per grace period,
   over `--orders` random orders: false stops, the share of front trainings stopped, and the trial-epochs
   the stops save (of the trainings' full budget).

Writes `rates_and_rungs.json` and `.md` into `--out`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from spaces import ArgumentParser, UsageError, run_cli  # noqa: E402

RULES = {"size rule alone (1,1)": (1.0, 1.0), "1,3": (1.0, 3.0), "0.5,2": (0.5, 2.0), "0.3,3": (0.3, 3.0),
         "0.1,10": (0.1, 10.0)}
NEAR_BEST = 0.01
MAJORITY_SLACK = 0.005  # a metric within this of the majority class's counts as "at the majority class"


def _read(path: str) -> tuple[list[dict], dict]:
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read table {path}: {exc}") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "majority_metric" not in meta:
        raise UsageError(f"table {path} has no majority_metric in its metadata (record it with bench/record_table.py)")
    return table.to_pylist(), meta


def trainings(path: str, scale: float | None = None) -> tuple[dict, int, float]:
    """(selection, lr_scale) -> {params, curve: epoch -> (metric, eval_loss)} for seed 0 (`scale`: that
    scale only; tables without scales count as scale 1); the epochs; the majority-class metric."""
    rows, meta = _read(path)
    out: dict[tuple, dict] = {}
    for r in rows:
        if (r.get("seed") or 0) != 0:
            continue
        lr_scale = r.get("lr_scale") or 1.0
        if scale is not None and not math.isclose(lr_scale, scale):
            continue
        entry = out.setdefault((r["selection"], lr_scale), {"params": int(r["trainable_params"]), "curve": {}})
        entry["curve"][int(r["epoch"])] = (float(r["metric"]), float(r.get("eval_loss") or np.nan))
    epochs = max(max(e["curve"]) for e in out.values())
    out = {k: e for k, e in out.items() if len(e["curve"]) == epochs}
    return out, epochs, float(meta["majority_metric"])


def rate_rules(path: str) -> dict:
    """Each rule of RULES on a product-space table: what a proposal drawn under it trains to, on average."""
    table, epochs, majority = trainings(path)
    scales = sorted({s for _, s in table})
    if len(scales) < 2:
        raise UsageError(f"table {path} holds one learning-rate scale: record it with --space product")
    selections = sorted({sel for sel, _ in table}, key=lambda sel: table[(sel, scales[0])]["params"])
    per_selection = []
    for sel in selections:
        finals = {s: table[(sel, s)]["curve"][epochs][0] for s in scales if (sel, s) in table}
        firsts = {s: table[(sel, s)]["curve"][1][0] for s in scales if (sel, s) in table}
        best = max(finals, key=finals.get)
        per_selection.append({"selection": sel, "params": table[(sel, scales[0])]["params"], "finals": finals,
                              "epoch1": firsts, "best_scale": best})
    rules = {}
    for name, (low, high) in RULES.items():
        inside = [s for s in scales if low - 1e-9 <= s <= high + 1e-9]
        finals, shortfalls, stuck1, stuck_end, near = [], [], [], [], []
        for p in per_selection:
            best = max(p["finals"].values())
            for s in inside:
                if s not in p["finals"]:
                    continue
                finals.append(p["finals"][s])
                shortfalls.append(best - p["finals"][s])
                stuck1.append(p["epoch1"][s] <= majority + MAJORITY_SLACK)
                stuck_end.append(p["finals"][s] <= majority + MAJORITY_SLACK)
                near.append(best - p["finals"][s] <= NEAR_BEST)
        rules[name] = {"scales": inside, "mean_final": float(np.mean(finals)),
                       "mean_shortfall": float(np.mean(shortfalls)), "at_majority_epoch1": float(np.mean(stuck1)),
                       "at_majority_end": float(np.mean(stuck_end)), "within_0.01_of_best": float(np.mean(near))}
    return {"table": Path(path).name, "epochs": epochs, "majority_metric": majority, "scales": scales,
            "selections": per_selection, "rules": rules}


def front_of(table: dict, epochs: int) -> set:
    """The trainings whose final (metric, params) is non-dominated in the table."""
    from search import pareto_mask

    keys = list(table)
    mask = pareto_mask([table[k]["curve"][epochs][0] for k in keys], [table[k]["params"] for k in keys])
    return {k for k, m in zip(keys, mask) if m}


def first_rung(path: str, grace_periods: tuple[int, ...], orders: int) -> dict:
    """False stops of the product's Pareto-ASHA at each grace period, over random arrival orders."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from search import make_scheduler

    table, epochs, _ = trainings(path, scale=1.0)
    front = front_of(table, epochs)
    keys = list(table)
    out = {"table": Path(path).name, "trainings": len(keys), "front": len(front), "epochs": epochs, "grace": {}}
    for grace in grace_periods:
        false_stops, stops, saved = [], [], []
        for order in range(orders):
            rng = np.random.default_rng(order)
            scheduler = make_scheduler("pareto-asha", "accuracy", epochs, protect_key=None, second_chance=False,
                                       grace_period=grace)
            stopped, saved_epochs = set(), 0
            for i in rng.permutation(len(keys)):
                key = keys[i]
                trial = Trial("__rates_and_rungs", stub=True, trial_id=f"t{i}")
                for epoch in range(1, epochs + 1):
                    metric, loss = table[key]["curve"][epoch]
                    result = {"accuracy": metric, "trainable_params": table[key]["params"], "epoch": epoch,
                              "eval_loss": loss}
                    if scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP and epoch < epochs:
                        stopped.add(key)
                        saved_epochs += epochs - epoch
                        break
            false_stops.append(len(stopped & front))
            stops.append(len(stopped))
            saved.append(saved_epochs / (epochs * len(keys)))
        out["grace"][grace] = {"rungs": list(make_scheduler("pareto-asha", "accuracy", epochs,
                                                            grace_period=grace).milestones),
                               "false_stops_median": float(np.median(false_stops)),
                               "false_stop_share": float(np.mean(false_stops)) / max(len(front), 1),
                               "stopped_median": float(np.median(stops)),
                               "epochs_saved": float(np.mean(saved))}
    return out


def markdown(result: dict) -> str:
    lines = ["# Rates and rungs", "",
             "Written by `bench/rates_and_rungs.py`; the command is in the JSON beside it.", ""]
    for rates in result["rates"]:
        lines += [f"## The rate rule on {rates['table']} ({len(rates['selections'])} selections x scales "
                  f"{', '.join(f'{s:g}' for s in rates['scales'])}; {rates['epochs']} epochs; majority "
                  f"{rates['majority_metric']:.3f})", "",
                  "| rule (lr_scale range) | mean final | mean shortfall from best scale | at majority after "
                  "epoch 1 | at majority at the end | within 0.01 of best |", "|---|---|---|---|---|---|"]
        for name, r in rates["rules"].items():
            lines.append(f"| {name} | {r['mean_final']:.4f} | {r['mean_shortfall']:.4f} | "
                         f"{r['at_majority_epoch1']:.0%} | {r['at_majority_end']:.0%} | "
                         f"{r['within_0.01_of_best']:.0%} |")
        lines += ["", "| selection | params | " + " | ".join(f"final @ {s:g}" for s in rates["scales"])
                  + " | best scale |", "|---|---|" + "---|" * (len(rates["scales"]) + 1)]
        for p in rates["selections"]:
            cells = " | ".join(f"{p['finals'][s]:.3f}" if s in p["finals"] else "" for s in rates["scales"])
            lines.append(f"| {p['selection']} | {p['params']:,} | {cells} | {p['best_scale']:g} |")
        lines.append("")
    lines += ["## The first rung: false stops of Pareto-ASHA (no second chance), by grace period", "",
              "| table | trainings | front | grace | rungs | false stops (median) | share of the front stopped | "
              "trainings stopped (median) | trial-epochs saved |", "|---|---|---|---|---|---|---|---|---|"]
    for rung in result["rungs"]:
        for grace, g in rung["grace"].items():
            lines.append(f"| {rung['table']} | {rung['trainings']} | {rung['front']} | {grace} | {g['rungs']} | "
                         f"{g['false_stops_median']:g} | {g['false_stop_share']:.0%} | {g['stopped_median']:g} | "
                         f"{g['epochs_saved']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = ArgumentParser(prog="bench/rates_and_rungs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--product", nargs="*", default=[], help="product-space tables (record_table --space product)")
    parser.add_argument("--curves", nargs="*", default=[], help="any recorded tables, for the first-rung question")
    parser.add_argument("--grace", default="1,2,3", help="grace periods to compare (default 1,2,3)")
    parser.add_argument("--orders", type=int, default=20, help="random arrival orders per table (default 20)")
    parser.add_argument("--out", default="bench/results")

    def body() -> int:
        args = parser.parse_args(argv)
        if not args.product and not args.curves:
            raise UsageError("give --product and/or --curves tables")
        graces = tuple(int(g) for g in args.grace.split(","))
        result = {"command": "bench/rates_and_rungs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "rates": [rate_rules(p) for p in args.product],
                  "rungs": [first_rung(p, graces, args.orders) for p in [*args.product, *args.curves]]}
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rates_and_rungs.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "rates_and_rungs.md").write_text(markdown(result))
        print(markdown(result))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
