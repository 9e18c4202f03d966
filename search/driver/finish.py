"""A search that has ended: its outputs written, its frontier printed, scored once on held-out rows.

An interrupted search (Ctrl-C, a killed driver's partial state) gets trials.parquet and the command
that resumes it; a finished one gets the test numbers, the figures, the report, the paper study's
table where one was asked, frontier.json last (its presence marks a finished run) and, with
`--confirm-seeds`, its frontier trained again over more seeds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from search.driver.again import confirm, final_budget, final_stage, write_final
from search.driver.console import log_note
from search.driver.prepare import Prepared, study_points
from search.driver.trials import trial_settings
from search.driver.tuner import interrupted
from search.results.figures import pareto_plot
from search.results.holdout import compare, holdout_trials, score_checkpoints, test_summary, with_test_columns
from search.results.html_report import build_report
from search.results.table import (
    final_rows,
    format_study,
    frontier,
    frontier_document,
    study_table,
    trial_rows,
    write_trials,
)
from search.results.versus import headline, versus_free_answers
from search.storage.files import (
    FRONTIER_FILE,
    HOLDOUT_FILE,
    PARETO_PLOT,
    REPORT_FIGURES,
    STUDY_FILE,
    TRIALS_FILE,
    atomic_write,
    write_json,
)
from search.storage.run_info import RunInfo
from spaces import TENSORS_FILE


def finish(prep: Prepared, results, started: float) -> int:
    """Report a search that has ended (started or resumed) and, if asked, confirm its frontier. Exit code."""
    code = write_outputs(prep, results, time.monotonic() - started)
    if code == 0 and (budget := final_budget(prep.config)) is not None:
        document = json.loads((prep.run_dir / FRONTIER_FILE).read_text())
        final_stage(prep, budget, document)
        write_final(prep, document)
    if code == 0 and prep.config.confirm_seeds > 0:
        confirm(prep, prep.config.confirm_seeds)
    return code


def write_outputs(prep: Prepared, results, elapsed: float) -> int:
    """Write the run's outputs and print the frontier; an interrupted run gets no frontier.json. Exit code."""
    metric, run_dir, location, config = prep.task.metric, prep.run_dir, prep.location, prep.config
    frame = trial_rows(results, metric, config.max_epochs, location.fs_path)
    if frame.empty:
        raise RuntimeError("no trial reported a result")
    write_trials(frame, run_dir, metric)
    if interrupted(location, config.num_samples):
        location.push()
        print(f"\ninterrupted after {len(results)} of {config.num_samples} trials; what finished is in "
              f"{run_dir / TRIALS_FILE}\ncontinue with: python -m search.run --resume {location.quoted}")
        return 130
    location.prune_checkpoints(set(frame["checkpoint"].dropna()))  # finished: each trial's last is enough
    run = RunInfo.read(run_dir)
    front = frontier(frame)
    # Chosen on validation; now, once, the held-out rows (none for replayed runs: nothing was trained).
    tests = None if config.replay else evaluate_holdout(prep, frame, front, trial_settings(prep))
    frame = with_test_columns(frame, tests)
    write_trials(frame, run_dir, metric)
    majority = prep.data.baseline(metric)
    pareto_plot(frame, run_dir / PARETO_PLOT, metric,
                f"{config.model} on {prep.task.name}: {frame['trial_id'].nunique()} trials, "
                f"{config.max_epochs} epochs", majority)
    document = frontier_document(front, run, prep.reference, frame)
    test = prep.data.test
    document["test"] = test_summary(tests, prep.task.test_split, len(test) if test is not None else 0)
    document["elapsed_seconds"] = round(elapsed, 1)
    document["trials"] = {s: int(n) for s, n in frame[frame["final"]]["status"].value_counts().items()}
    if "origin" in frame.columns:  # where the trials came from: reference points, the sampler's start or model, ...
        document["origins"] = {str(o): int(n) for o, n in final_rows(frame)["origin"].value_counts().items()}
    if tests is not None:
        document["versus_free_answers"] = free_answers(prep, frame, front)
    print_frontier(document, metric, frame["trial_id"].nunique(), elapsed)
    if line := headline(document.get("versus_free_answers") or [], metric):
        print(line)
    if config.study.startswith("paper-"):
        table = study_table(frame, study_points(config.study, prep.taxonomy), prep.taxonomy.total_params)
        atomic_write(run_dir / STUDY_FILE, lambda tmp: table.to_csv(tmp, index=False))
        print(f"\n{config.study}: {metric}, mean and standard deviation over {config.study_seeds} seed(s), on "
              f"validation and on the held-out test rows (with the mean of the seeds' 95% bootstrap intervals); "
              f"share = mean / mean of full fine-tuning")
        print(format_study(table, metric))
        print(f"wrote {run_dir / STUDY_FILE}")
    report_path = build_report(run_dir, location.quoted, frontier_document=document)
    location.push()  # everything but frontier.json, which comes last: its presence marks a finished run
    write_json(run_dir / FRONTIER_FILE, document)
    location.push((FRONTIER_FILE,))
    print(f"\nwrote {run_dir / TRIALS_FILE}\n      {run_dir / FRONTIER_FILE}\n      {run_dir / PARETO_PLOT}"
          f"\n      {report_path} (and {REPORT_FIGURES})" + (f"\nuploaded to {location}" if location.is_remote else ""))
    if document.get("test") and any((p.get("preset") or "").split("#")[0] == "full" for p in document["references"]):
        print(f"the winning ticket (fewest parameters, not significantly worse than full fine-tuning on test rows):\n"
              f"  python -m search.export {location.quoted} --within-noise full --save-model")
    else:
        print(f"export a frontier point: python -m search.export {location.quoted} [--max-params N | --min-metric X]")
    print(f"open the report: {report_path}")
    if note := log_note(run_dir):
        print(note)
    return 0


# search.steer.strategies.ORIGINS, as the console says them
ORIGIN_WORDS = {"reference": "reference points", "spread": "spread over sizes", "gap": "filled a gap of the front",
                "startup": "the sampler's random start", "model": "proposed by the sampler from the results"}


def free_answers(prep: Prepared, frame, front) -> list[dict]:
    """frontier.json's `versus_free_answers` (search.results.versus), from the scored trials' test outputs."""
    with np.load(prep.run_dir / HOLDOUT_FILE) as saved:
        outputs = {name: saved[name] for name in saved.files if name != "labels"}
        labels = saved["labels"]
    scored = final_rows(frame)
    scored = scored[scored["test_metric"].notna()] if "test_metric" in scored.columns else scored.iloc[:0]
    return versus_free_answers(scored, front, outputs, labels, prep.task.metric, prep.task.regression)


def print_frontier(document: dict, metric: str, trials: int, elapsed: float) -> None:
    """The frontier as a table: validation (what the search chose on) beside test (scored once, after)."""
    test = document.get("test")
    print(f"\nPareto frontier ({len(document['points'])} of {trials} trials; "
          f"hypervolume {document['hypervolume']:.4f} on validation; {elapsed / 60:.1f} min):")
    rows = document["points"] + [r for r in document.get("references", []) if not r["on_frontier"]]
    header = f"{'trainable':>11} {'fraction':>9} {'val ' + metric:>13}"
    if test:
        header += f" {'test ' + metric:>14} {'95% interval':>15} {'~best':>5} {'~full':>5}"
    print(header + f" {'lr':>8}  {'trial':<10} selection")
    mark = {True: "yes", False: "no", None: "-"}
    for p in rows:
        line = f"{p['trainable_params']:>11,} {p['fraction']:>9.3%} {p['metric']:>13.4f}"
        if test:
            if p.get("test_metric") is None:
                line += f" {'-':>14} {'':>15} {'':>5} {'':>5}"
            else:
                span = f"[{p['test_low']:.3f}, {p['test_high']:.3f}]"
                line += (f" {p['test_metric']:>14.4f} {span:>15}"
                         f" {mark[p['not_worse_than_best']]:>5} {mark[p['not_worse_than_full']]:>5}")
        line += f" {p['lr']:>8.1e}  {p['trial_id']:<10} {p['selection']}"
        line += f"  [{p['preset']}]" if p["preset"] else ""
        print(line + ("" if p.get("on_frontier", True) else "  (reference, not on the frontier)"))
    if origins := document.get("origins"):
        print("where the trials came from: " + ", ".join(f"{n} {ORIGIN_WORDS.get(o, o)}" for o, n in origins.items()))
    if test:
        print(f"test: {test['rows']:,} held-out rows of the {test['split']} split, scored once after the search; "
              f"~best / ~full: not significantly worse than the best scored point / than full fine-tuning "
              f"(one-sided paired randomisation test, p < 0.05)")
    else:
        print("no test split: the numbers above are validation numbers the search chose on")


def evaluate_holdout(prep, frame: pd.DataFrame, front: pd.DataFrame, settings) -> pd.DataFrame | None:
    """Score the chosen trials on the test split and compare them; None when there is no test split.

    `prep`: the run (search.driver.prepare.Prepared); `settings`: the trials' TrialSettings; where the scoring runs:
    search.results.holdout.score_checkpoints.
    """
    from safetensors.torch import load_file

    test = prep.data.test
    if test is None:
        return None
    trials = holdout_trials(frame, front)
    checkpoints = {row.trial_id: (list(row.units), load_file(str(prep.location.fetch_folder(row.checkpoint)
                                                                    / TENSORS_FILE)))
                   for row in trials.itertuples()}
    outputs = score_checkpoints(checkpoints, test, settings, prep.config)
    np.savez_compressed(Path(prep.run_dir) / HOLDOUT_FILE, **{"labels": test.labels, **outputs})
    return compare(outputs, test.labels, trials, prep.task.metric, prep.task.regression)
