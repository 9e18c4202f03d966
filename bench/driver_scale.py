"""How the driver's cost per decision grows with a search's trials, at cluster size: the driver alone.

    .venv/bin/python bench/driver_scale.py [--table bench/tables/minilm-rotten_tomatoes-product.parquet]
        [--trials 5000] [--workers 256] [--marks 100,500,1000,2000,5000] [--strategy default] [--seed 0]
        [--out bench/results/driver_scale.json]

The product's searcher (`search.ParetoOptunaSearch` with its TPE sampler, spread start and gap filling, its
study in an Optuna journal file) and scheduler (Pareto-ASHA, its state file written as in a real run) are driven
by the replay harness's simulation (bench/search_efficiency.run_once) with `--workers` simulated workers, the
paper's reference points first, as `python -m search.run` starts. Trials answer from the table's surrogate,
whose own CPU time is not counted: by default the Rotten Tomatoes product table, `search.run`'s own space (module
types off, bias or all, and the learning-rate scale); an on/off table at one rate (e.g. a layer table) also works.
Nothing else runs in the driver's process, so what is measured is what a real driver spends deciding; Ray's own
per-result cost comes on top (Ray Tune's scalability benchmarks).

Every searcher and scheduler call is timed in CPU seconds (time.process_time, so other load on the machine
does not count). A decision is either a proposal (the searcher's suggest and the scheduler's on_trial_add, or a
promotion) or a result (the searcher's and the scheduler's on_trial_result, and on_trial_complete / paused when
it ends the trial's run). Reported for the decisions made while the started trials were between one mark and
the next: the median and 95th percentile of each kind in milliseconds, and the CPU split between the searcher
(Optuna) and the scheduler (Pareto-ASHA); and how a decision's cost grows, as the slope of log(median) (and
of log(mean)) against log(trials) between the first and the last window (0: constant, 1: linear in the trials).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402

from spaces import ArgumentParser, UsageError, run_cli  # noqa: E402

PROPOSAL_CALLS = ("suggest", "on_trial_add", "promote")


def decisions(timings: list[tuple]) -> list[dict]:
    """The timed calls grouped into decisions: consecutive calls of one kind (proposal or result) at the same
    count of results so far are one decision; its cost is their sum, split by component."""
    out: list[dict] = []
    key = None
    for component, call, started, results, seconds in timings:
        kind = "proposal" if call in PROPOSAL_CALLS else "result"
        if call in ("suggest", "promote") or (kind, results) != key or out[-1]["kind"] != kind:
            out.append({"kind": kind, "started": started, "searcher": 0.0, "scheduler": 0.0})
            key = (kind, results)
        out[-1][component] += seconds
    for d in out:
        d["seconds"] = d["searcher"] + d["scheduler"]
    return out


def by_marks(made: list[dict], marks: list[int]) -> list[dict]:
    """Per window of started trials (previous mark, mark]: the decisions' median and 95th percentile (ms)
    per kind, and the CPU split between searcher and scheduler."""
    rows, low = [], 0
    for mark in marks:
        window = [d for d in made if low < max(d["started"], 1) <= mark]
        row: dict = {"trials_from": low + 1, "trials_to": mark, "decisions": len(window)}
        for kind in ("proposal", "result"):
            ms = np.array([d["seconds"] for d in window if d["kind"] == kind]) * 1000
            row[kind] = ({"count": int(len(ms)), "median_ms": float(np.median(ms)),
                          "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean())} if len(ms) else None)
        every = np.array([d["seconds"] for d in window]) * 1000
        row["median_ms"] = float(np.median(every)) if len(every) else None
        total = sum(d["seconds"] for d in window)
        row["searcher_share"] = sum(d["searcher"] for d in window) / total if total else None
        row["cpu_seconds"] = total
        rows.append(row)
        low = mark
    return rows


def growth(rows: list[dict], kind: str, stat: str = "median_ms") -> float | None:
    """The slope of log(`stat` of a kind's decisions) against log(trials), from the first window to the last
    (0: a decision costs the same at any size; 1: it costs in proportion to the trials so far)."""
    first, last = rows[0].get(kind), rows[-1].get(kind)
    if not first or not last or first[stat] <= 0 or last[stat] <= 0 or rows[-1]["trials_to"] == rows[0]["trials_to"]:
        return None
    return math.log(last[stat] / first[stat]) / math.log(rows[-1]["trials_to"] / rows[0]["trials_to"])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="bench/driver_scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="bench/tables/minilm-rotten_tomatoes-product.parquet")
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--marks", default="100,500,1000,2000,5000",
                        help="report windows of started trials ending at these counts (the last: --trials)")
    parser.add_argument("--strategy", default="default", help="a strategy of bench/search_efficiency.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/driver_scale.json"))

    def body() -> int:
        args = parser.parse_args(argv)
        if args.trials < 1 or args.workers < 1:
            raise UsageError("--trials and --workers must be at least 1")
        try:
            marks = sorted({int(m) for m in args.marks.split(",") if int(m) <= args.trials} | {args.trials})
        except ValueError:
            raise UsageError(f"--marks takes trial counts, e.g. 100,500,1000, not '{args.marks}'") from None
        if marks[0] < 1:
            raise UsageError("--marks must be positive trial counts")
        if not Path(args.table).is_file():
            raise UsageError(f"table not found: {args.table}")
        from bench import search_efficiency as harness

        if args.strategy not in harness.STRATEGIES or harness.STRATEGIES[args.strategy].presets_only:
            raise UsageError(f"--strategy must be a searching strategy of bench/search_efficiency.py, not "
                             f"'{args.strategy}'")
        table = harness.open_table(args.table, surrogate=True)
        timings: list[tuple] = []
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            run = harness.run_once(table, args.strategy, harness.STRATEGIES[args.strategy], args.seed, True,
                                   args.workers, math.inf, points=None, max_trials=args.trials, timings=timings,
                                   run_dir=Path(folder))
        made = decisions(timings)
        rows = by_marks(made, marks)
        out = {"command": "bench/driver_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "table": table.name, "strategy": args.strategy, "definition": run["definition"],
               "workers": args.workers, "trials": args.trials, "started": run["started"],
               "results": len(run["events"]),
               "repeats": run["repeats"],
               "wall_seconds": time.monotonic() - started, "driver_cpu_seconds": run["driver_seconds"],
               "surrogate_cpu_seconds": table.lookup_seconds, "windows": rows,
               "growth_exponent": {f"{kind} {stat}": growth(rows, kind, stat) for kind in ("proposal", "result")
                                   for stat in ("median_ms", "mean_ms")}}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        for r in rows:
            p, q = r["proposal"] or {}, r["result"] or {}
            print(f"trials {r['trials_from']:>5}-{r['trials_to']:<5} proposal median {p.get('median_ms', 0):7.2f} ms "
                  f"(p95 {p.get('p95_ms', 0):7.2f}), result median {q.get('median_ms', 0):7.2f} ms "
                  f"(p95 {q.get('p95_ms', 0):7.2f}); searcher {100 * (r['searcher_share'] or 0):.0f}% of "
                  f"{r['cpu_seconds']:.1f} CPU-s")
        print(f"{run['started']:,} trials started, {run['repeats']:,} repeated proposals answered from the run's "
              "own results" + (" (the search ended: the sampler proposed only repeats)"
                               if run["started"] < args.trials else ""))
        print("growth exponents (log cost / log trials): " + ", ".join(
            f"{k} {v:.2f}" for k, v in out["growth_exponent"].items() if v is not None) + f"; wrote {args.out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
