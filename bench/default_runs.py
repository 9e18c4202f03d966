"""Summarise several runs of the same search (e.g. the default with --seed 0, 1, 2) on held-out test rows.

    for s in 0 1 2; do /usr/bin/time -v .venv/bin/python -m search.run --seed $s --name default-final-seed$s; done
    .venv/bin/python bench/default_runs.py results/default-final-seed{0,1,2} [--out bench/results/default_run-NAME.json]
        [--against results/other-seed{0,1,2}]

Per reference point: the test metric of each run, the median, the median share of full fine-tuning's
test metric, and in how many runs it was not significantly worse than full fine-tuning; per run: the
cheapest scored sub-network not significantly worse than full fine-tuning, the majority class, and how many
of the search's own sub-networks (not reference points) are on the validation front and on the test
split's front of every scored sub-network, and the test hypervolume of the returned front (bench/real_runs.py's,
with its 95% bootstrap interval over test rows). With `--against`, one run per run given (the same seeds, in
order, scored on the same test rows, e.g. the default without an option against with it), each run's test
hypervolume minus its partner's, with the paired interval. Per run, where the run wrote it: the search against
the free answers (frontier.json's `versus_free_answers`: at each free answer's size, the best searched ticket chosen
on validation, and the paired test difference), and where its trials came from (`origins`).
Reads only what the runs wrote (frontier.json, test_outputs.npz).
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
    parser.add_argument("--against", nargs="+", type=Path, default=None,
                        help="runs to pair with RUNS, one each, in order (test hypervolume minus theirs)")
    args = parser.parse_args(argv)
    if args.against is not None and len(args.against) != len(args.runs):
        print(f"error: --against takes one run per run ({len(args.runs)}), got {len(args.against)}", file=sys.stderr)
        return 2
    runs = []
    for i, folder in enumerate(args.runs + (args.against or [])):  # every run finished, the partners too
        path = folder / "frontier.json"
        if not path.is_file():
            print(f"error: {folder} is not a finished run (no frontier.json)", file=sys.stderr)
            return 2
        front = json.loads(path.read_text())
        if not front.get("test"):
            print(f"error: {folder} has no test numbers", file=sys.stderr)
            return 2
        if i < len(args.runs):
            runs.append((folder.name, front))
    metric = runs[0][1]["metric"]
    table: dict[str, dict] = {}
    cheapest, searched, versus = [], [], []
    for name, front in runs:
        if "versus_free_answers" in front:
            versus.append({"run": name, "origins": front.get("origins"), "entries": front["versus_free_answers"]})
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
    if versus:
        summary["versus_free_answers"] = versus
    regression = metric in ("pearson", "spearman")
    crossed = _partners_free_answers(args.runs, args.against, metric, regression) if args.against else None
    if crossed:
        summary["versus_partners_free_answers"] = crossed
    hypervolumes = _hypervolumes(args.runs, args.against, regression=regression)
    if hypervolumes is not None:
        summary["test_hypervolume"] = hypervolumes
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
        print("    test front: " + ", ".join(f"{p['selection']} {p['trainable_params']:,} {p['test_metric']:.3f}"
                                            for p in row["test_front"]))
    if versus:
        print("the best searched ticket at no more parameters than each free answer (chosen on validation), "
              f"test {metric} minus the free answer's (paired 95%):")
        for row in versus:
            print(f"  {row['run']} (trials: {', '.join(f'{n} {o}' for o, n in (row['origins'] or {}).items())}):")
            for e in row["entries"]:
                d = e.get("difference")
                found = ("none on the front" if d is None else
                         f"{e['searched']['selection']} {e['searched']['trainable_params']:,} "
                         f"{e['searched']['test_metric']:.3f}: {d['value']:+.3f} ({d['low']:+.3f} to {d['high']:+.3f})")
                print(f"    {e['free_answer']:<16} {e['trainable_params']:>9,} {e['test_metric']:.3f} | {found}")
    if crossed:
        print("each run's best searched ticket at no more parameters than a free answer its partner trained and it did "
              f"not (chosen on validation), test {metric} minus the answer's, paired on the same test rows (95%):")
        for row in crossed:
            for e in row["entries"]:
                d = e.get("difference")
                found = ("none on the front" if d is None else
                         f"{e['searched']['selection']} {e['searched']['trainable_params']:,} "
                         f"{e['searched']['test_metric']:.3f}: {d['value']:+.3f} ({d['low']:+.3f} to {d['high']:+.3f})")
                print(f"  {row['run']} vs {row['against']}'s {e['free_answer']:<16} {e['trainable_params']:>9,} "
                      f"{e['test_metric']:.3f} | {found}")
    if hypervolumes is not None:
        print("test hypervolume of the returned front (95% interval)" + (", minus its partner's (paired 95%)"
                                                                         if args.against else "") + ":")
        for row in hypervolumes:
            line = f"  {row['run']}: {row['test_hypervolume']:.4f} ({row['low']:.4f}-{row['high']:.4f})"
            if "minus" in row:
                m = row["minus"]
                line += f"; minus {row['against']}: {m['difference']:+.4f} ({m['low']:+.4f} to {m['high']:+.4f})"
            print(line)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


def _partners_free_answers(runs: list[Path], against: list[Path], metric: str, regression: bool) -> list[dict]:
    """Per pair: the free answers the partner run trained and this run did not (a run without LoRA against one
    with it: KappaTune's, all-linear's), set against this run's searched front as search.results.versus sets a
    run's own (the searched ticket chosen on validation; the two scored on the same test rows, paired)."""
    import numpy as np
    import pandas as pd

    from search.results.versus import FREE_ANSWERS, versus_free_answers

    out = []
    for run, partner in zip(runs, against):
        fronts = [json.loads((folder / "frontier.json").read_text()) for folder in (run, partner)]
        if not all((folder / "test_outputs.npz").is_file() for folder in (run, partner)):
            continue
        saved = [np.load(folder / "test_outputs.npz") for folder in (run, partner)]
        if not np.array_equal(saved[0]["labels"], saved[1]["labels"]):
            continue  # not the same test rows: nothing to pair
        own = {r["preset"] for r in fronts[0]["references"]}
        answers = [r for r in fronts[1]["references"] if r["preset"] in FREE_ANSWERS and r["preset"] not in own]
        if not answers:
            continue
        points = [p for p in fronts[0]["points"] if not p.get("preset")]
        columns = ["trial_id", "preset", "selection", "trainable_params", "metric", "test_metric"]
        scored = pd.DataFrame([{c: r.get(c) for c in columns} for r in answers + points], columns=columns)
        front = pd.DataFrame([{c: p.get(c) for c in columns} for p in points], columns=columns)
        outputs = {**{k: saved[0][k] for k in saved[0].files if k != "labels"},
                   **{r["trial_id"]: saved[1][r["trial_id"]] for r in answers}}
        entries = versus_free_answers(scored, front, outputs, saved[0]["labels"], metric, regression)
        out.append({"run": run.name, "against": partner.name, "entries": entries})
    return out


def _hypervolumes(runs: list[Path], against: list[Path] | None, regression: bool) -> list[dict] | None:
    """Each run's test hypervolume (and, paired, minus its partner's), where the runs kept their test outputs."""
    if not all((folder / "test_outputs.npz").is_file() for folder in runs + (against or [])):
        return None
    from bench.real_runs import test_hypervolume

    out = []
    for i, folder in enumerate(runs):
        partner = against[i] if against else None
        row = test_hypervolume(folder, regression=regression, seed=i, against=partner)
        if "minus_presets" in row:  # real_runs.py's name for "minus the run it was paired with"
            row["minus"] = row.pop("minus_presets")
        out.append({"run": folder.name, **({"against": partner.name} if partner else {}), **row})
    return out


if __name__ == "__main__":
    sys.exit(main())
