"""The front at the final budget: after a search (`--final-train-size`), or on a finished run
(`python -m search.train RUN --front`), the front's tickets and the reference points trained again on the user's
rows (search.driver.again), scored on the same test rows, and set beside the search's numbers.

frontier.json's `final` holds: the budget; every retrained ticket with its numbers at both budgets; the front at
the final budget (validation metric, as the search's front is chosen); the rank agreement of the two budgets
(Kendall's tau, scipy's: the search's test metric against the final one, and the search's validation metric, what
it chose on, against the final test metric); and the "within noise of full fine-tuning" verdicts that flipped.
`search.export` then chooses from the final front; the report shows both fronts.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd

from search.driver.again import Budget, at_budget, scored_outputs, train_again
from search.driver.prepare import Prepared
from search.results.holdout import compare, holdout_trials
from search.results.table import frontier, read_trials, trial_point
from search.steer.pareto import pareto_mask
from search.storage.files import FINAL_HOLDOUT_FILE, FRONTIER_FILE, write_json
from search.storage.run_info import RunInfo


def final_budget(config) -> Budget | None:
    """The run's final stage from its options, or None where it has none."""
    if config.final_train_size is None:
        return None
    rows = None if config.final_train_size == "all" else int(config.final_train_size)
    return Budget(rows, config.final_epochs or config.max_epochs)


def final_stage(prep: Prepared, budget: Budget, document: dict) -> dict:
    """Train the front and the reference points of the finished search in `prep` again at `budget`; return
    frontier.json's `final` block (and write it into the run's frontier.json, with the report)."""
    from scipy.stats import kendalltau

    frame = read_trials(prep.run_dir)
    front = frontier(frame)
    chosen = holdout_trials(frame, front)  # the front's tickets and every reference point, as the test scored them
    points = {t: json.loads(c) for t, c in zip(chosen["trial_id"], chosen["config"])}
    final = at_budget(prep, budget)
    rows = len(final.data.train)
    started = time.monotonic()
    print(f"\nfinal stage: the front's tickets and the reference points ({len(points)}) trained again on {rows:,} "
          f"training rows x {budget.epochs} epochs (the search: {prep.config.train_size:,} x "
          f"{prep.config.max_epochs}), scored on the same test rows; stopped, it continues with: python -m "
          f"search.train {prep.location.quoted} --front --train-size {budget.train_size or 'all'} --epochs "
          f"{budget.epochs}", flush=True)
    retrained = {r.key: r for r in train_again(final, points, [prep.config.seed], "final")}
    scored_pairs = scored_outputs(final, list(retrained.values()), points)
    outputs: dict[str, Any] = {key: value for (key, _), value in scored_pairs.items()}
    run = RunInfo.read(prep.run_dir)
    kept = chosen[chosen["trial_id"].isin(retrained)].reset_index(drop=True)
    tests = None
    if outputs and prep.data.test is not None:
        np.savez_compressed(prep.run_dir / FINAL_HOLDOUT_FILE, **{"labels": prep.data.test.labels, **outputs})
        tests = compare(outputs, prep.data.test.labels, kept, prep.task.metric, prep.task.regression)
        tests = tests.set_index("trial_id")
    entries = []
    for row in kept.itertuples():
        again = retrained[row.trial_id]
        search = trial_point(row, run.total_params)
        entry = {**search, "metric": again.metric, "epoch": budget.epochs, "checkpoint": again.checkpoint,
                 "trained_seconds": round(again.seconds, 1), "search_metric": search["metric"],
                 "search_test_metric": search.get("test_metric"),
                 "search_not_worse_than_full": search.get("not_worse_than_full")}
        for column in ("test_metric", "test_low", "test_high", "not_worse_than_best", "not_worse_than_full"):
            value = None if tests is None else tests.loc[row.trial_id, column]
            entry[column] = None if value is None or pd.isna(value) else (
                bool(value) if column.startswith("not_worse") else float(value))
        entries.append(entry)
    entries.sort(key=lambda e: (e["trainable_params"], -e["metric"]))
    mask = pareto_mask(np.array([e["metric"] for e in entries]), np.array([e["trainable_params"] for e in entries]))
    for entry, on in zip(entries, mask, strict=True):
        entry["on_final_front"] = bool(on)
    block = {"budget": budget.as_dict(rows), "search_budget": {"train_size": prep.config.train_size,
                                                                "epochs": prep.config.max_epochs},
             "points": [e for e in entries if e["on_final_front"]], "retrained": entries,
             "elapsed_seconds": round(time.monotonic() - started, 1)}
    scored = [e for e in entries if e["test_metric"] is not None and e["search_test_metric"] is not None]
    if len(scored) >= 2:
        final_test = [e["test_metric"] for e in scored]
        tau_test = kendalltau([e["search_test_metric"] for e in scored], final_test)
        tau_search = kendalltau([e["search_metric"] for e in scored], final_test)
        block["kendall_tau"] = {"test": _number(tau_test.statistic), "test_p": _number(tau_test.pvalue),
                                "search_validation": _number(tau_search.statistic), "points": len(scored)}
    block["flipped"] = [{"trial_id": e["trial_id"], "selection": e["selection"], "preset": e["preset"],
                         "search": e["search_not_worse_than_full"], "final": e["not_worse_than_full"]}
                        for e in entries if e["search_not_worse_than_full"] is not None
                        and e["not_worse_than_full"] is not None
                        and e["search_not_worse_than_full"] != e["not_worse_than_full"]]
    document["final"] = block
    print_final(block, prep.task.metric)
    return block


def _number(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def write_final(prep: Prepared, document: dict) -> None:
    """frontier.json (and the report) with the final stage in them."""
    from search.results.html_report import build_report

    build_report(prep.run_dir, prep.location.quoted, frontier_document=document)
    prep.location.push()
    write_json(prep.run_dir / FRONTIER_FILE, document)
    prep.location.push((FRONTIER_FILE,))


def print_final(block: dict, metric: str) -> None:
    budget, search = block["budget"], block["search_budget"]
    mark = {True: "yes", False: "no", None: "-"}
    print(f"\nat the final budget ({budget['train_size']:,} rows x {budget['epochs']} epochs) beside the search's "
          f"({search['train_size']:,} x {search['epochs']}); * on the final front")
    print(f"{'trainable':>11} {'val':>7} {'test':>7} {'95% interval':>15} {'~full':>5} | {'search val':>10} "
          f"{'test':>7} {'~full':>5}  selection")
    for e in block["retrained"]:
        span = "" if e["test_low"] is None else f"[{e['test_low']:.3f}, {e['test_high']:.3f}]"
        test = "-" if e["test_metric"] is None else f"{e['test_metric']:.4f}"
        before = "-" if e["search_test_metric"] is None else f"{e['search_test_metric']:.4f}"
        print(f"{e['trainable_params']:>11,} {e['metric']:>7.4f} {test:>7} {span:>15} "
              f"{mark[e['not_worse_than_full']]:>5} | {e['search_metric']:>10.4f} {before:>7} "
              f"{mark[e['search_not_worse_than_full']]:>5}  {'*' if e['on_final_front'] else ' '}"
              f"{e['selection'] or 'head only'}" + (f"  [{e['preset']}]" if e["preset"] else ""))
    if tau := block.get("kendall_tau"):
        print(f"rank agreement over {tau['points']} tickets (Kendall's tau): test {metric} at the search's budget vs "
              f"the final one {tau['test']}, the search's validation {metric} vs the final test {metric} "
              f"{tau['search_validation']}")
    flips = block["flipped"]
    print("within noise of full fine-tuning: " + ("the same verdict at both budgets for every ticket" if not flips else
          "; ".join(f"{f['selection'] or 'head only'} {mark[f['search']]} -> {mark[f['final']]}" for f in flips)))
