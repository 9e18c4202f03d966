"""Summarise several runs of the same search (e.g. the default with --seed 0, 1, 2) on held-out test rows.

    for s in 0 1 2; do /usr/bin/time -v .venv/bin/python -m search.run --seed $s --name default-final-seed$s; done
    .venv/bin/python bench/default_runs.py results/default-final-seed{0,1,2} [--out bench/results/default_runs.json]

Per reference point: the test metric of each run, the median, the median share of full fine-tuning's
test metric, and in how many runs it was not significantly worse than full fine-tuning; per run: the
cheapest scored sub-network not significantly worse than full fine-tuning, the majority class, and how many
of the search's own sub-networks (not reference points) are on the validation front and on the test
split's front of every scored sub-network.
Reads only what the runs wrote (frontier.json, run.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for folder in args.runs:
        path = folder / "frontier.json"
        if not path.is_file():
            print(f"error: {folder} is not a finished run (no frontier.json)", file=sys.stderr)
            return 2
        front = json.loads(path.read_text())
        if not front.get("test"):
            print(f"error: {folder} has no test numbers", file=sys.stderr)
            return 2
        runs.append((folder.name, front))
    metric = runs[0][1]["metric"]
    table: dict[str, dict] = {}
    cheapest, searched = [], []
    for name, front in runs:
        scored = {p["trial_id"]: p for p in front["references"] + front["points"]}
        full = next(p for p in front["references"] if p["preset"] == "full")
        for ref in front["references"]:
            row = table.setdefault(ref["preset"], {"trainable_params": ref["trainable_params"], "test": [],
                                                   "share": [], "not_worse_than_full": 0})
            row["test"].append(ref["test_metric"])
            row["share"].append(ref["test_metric"] / full["test_metric"])
            row["not_worse_than_full"] += bool(ref["not_worse_than_full"])
        # the test split's front over every scored point: did the search's own proposals get onto it?
        points = list(scored.values())
        on_test_front = [p for p in points if not any(
            q["test_metric"] >= p["test_metric"] and q["trainable_params"] <= p["trainable_params"]
            and (q["test_metric"] > p["test_metric"] or q["trainable_params"] < p["trainable_params"])
            for q in points)]
        mine = [p for p in on_test_front if not p.get("preset")]
        searched.append({"run": name, "searched_on_validation_front": sum(not p.get("preset") for p in front["points"]),
                         "searched_on_test_front": len(mine),
                         "test_front": [{"selection": p["selection"], "trainable_params": p["trainable_params"],
                                         "test_metric": p["test_metric"], "preset": p.get("preset")}
                                        for p in sorted(on_test_front, key=lambda p: p["trainable_params"])]})
        within = [p for p in scored.values() if p["not_worse_than_full"]]
        pick = min(within, key=lambda p: (p["trainable_params"], -p["test_metric"]))
        cheapest.append({"run": name, "trial_id": pick["trial_id"], "selection": pick["selection"],
                         "trainable_params": pick["trainable_params"], "fraction": pick["fraction"],
                         "test_metric": pick["test_metric"], "elapsed_search_seconds": front.get("elapsed_seconds"),
                         "test_rows": front["test"]["rows"]})
    summary = {"metric": metric, "runs": [name for name, _ in runs], "references": {
        name: {**row, "median": statistics.median(row["test"]), "median_share": statistics.median(row["share"])}
        for name, row in sorted(table.items(), key=lambda kv: kv[1]["trainable_params"])},
        "cheapest_within_noise": cheapest, "searched_points": searched}
    print(f"test {metric} of each reference point over {len(runs)} runs ({', '.join(summary['runs'])})")
    print(f"{'point':<12} {'trainable':>11} {'each run':>24} {'median':>7} {'share':>7} {'~full':>6}")
    for name, row in summary["references"].items():
        each = " ".join(f"{v:.3f}" for v in row["test"])
        print(f"{name:<12} {row['trainable_params']:>11,} {each:>24} {row['median']:>7.3f} {row['median_share']:>7.1%} "
              f"{row['not_worse_than_full']:>3}/{len(runs)}")
    print("cheapest sub-network not significantly worse than full fine-tuning, per run:")
    for pick in cheapest:
        print(f"  {pick['run']}: {pick['selection']} ({pick['trainable_params']:,} params, {pick['fraction']:.2%}), "
              f"test {metric} {pick['test_metric']:.3f}")
    print("the search's own sub-networks on the validation front / on the test split's front (of every scored one):")
    for row in searched:
        print(f"  {row['run']}: {row['searched_on_validation_front']} / {row['searched_on_test_front']}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
