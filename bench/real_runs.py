"""Real searches against the presets and against random search, at the same compute, scored on test rows.

    .venv/bin/python bench/real_runs.py [--task rotten_tomatoes | --data FILE --text-column C --label-column L]
        [--granularity unit] [--seeds 0,1,2] [--budget-factor 4] [--results-dir results/real_runs]
        [--out bench/results/real_runs-TASK-GRANULARITY.json] [-- MORE SEARCH.RUN OPTIONS]
    .venv/bin/python bench/real_runs.py --report bench/results/real_runs-TASK-GRANULARITY.json [...]

Everything runs through `python -m search.run`, as a user runs it, one run at a time on this machine:

- `presets`: `--study presets` (the paper's reference points, to the full budget, no search);
- `default`: the product's defaults with `--trial-seconds B`;
- `lora`: the product's defaults with LoRA added to the space (`--switch-values off,bias,all,lora`), the same
  `--trial-seconds B`; its row also gives its test hypervolume minus the default's, with the paired interval;
- `random`: random search as its own users set it up (Optuna's random sampler over the same space, no early
  stopping, no reference points, no spread start, no gap filling) with the same `--trial-seconds B`;

where B is `--budget-factor` times the trial-seconds the presets run spent (each epoch's seconds, summed over
its trials), per seed. Each run scores its frontier (and its reference points) on the held-out test split.
`presets`, `default` and `random` search the space without LoRA (`--switch-values off,bias,all`), as their
committed results did: LoRA joined the product's default space later, so `lora` is the product's default now.

Reported per strategy and seed, from what the runs wrote (trials.parquet, frontier.json, test_outputs.npz):
- the hypervolume of the returned front on the test split (each frontier point's test metric; against the
  best constant prediction on the test rows and log10 of all parameters), with a 95% percentile bootstrap interval
  over test rows (1,000 resamples, the same rows resampled for every point), and its difference from the
  presets front's on the same rows, with a paired interval (both fronts on each resample of the rows);
- the cheapest scored sub-network not significantly worse than full fine-tuning on the test rows (the presets
  run's `full`, same seed and rows; one-sided paired randomisation test, p >= 0.05, search.results.uncertainty);
- the trial-seconds spent, and the default's validation hypervolume once it had spent what the presets did;
- every sub-network it scored on test rows (front and reference points) with its kind (`ticket_kind`: norms
  and biases, LoRA, whole modules), so the report can say, per size, where LoRA tickets sit against the others.

`--report FILE...` runs nothing: it prints each results file as the markdown table docs/measurements.md shows,
and per file in how many seeds each strategy's test front is above the presets' (and beyond the paired interval),
and the default's test hypervolume against random search's median.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spaces import WITHOUT_LORA, ArgumentParser, UsageError, run_cli  # noqa: E402

# the space without LoRA (off, bias, all) for presets, default and random, as their committed results were run:
# LoRA joined the product's default space after them (docs/measurements.md, "What the default run finds")
NO_LORA = ["--switch-values", ",".join(WITHOUT_LORA)]
STRATEGIES = {
    "presets": ["--study", "presets", *NO_LORA],
    "default": NO_LORA,
    "random": ["--sampler", "random", "--scheduler", "none", "--no-reference-points", "--spread-points", "0",
               "--fill-gaps", "0", *NO_LORA],
    # the same with LoRA in the space (every linear switch also offers lora2, lora8, lora32; the LoRA
    # reference points lora.qv and lora.all-linear join the others): the product's default space now
    "lora": ["--switch-values", "off,bias,all,lora"],
}
RESAMPLES = 1000


def search_run(name: str, options: list[str], results_dir: Path) -> Path:
    """Run `python -m search.run` (unless the run already finished) and return its folder."""
    run_dir = results_dir / name
    if (run_dir / "frontier.json").is_file():
        print(f"  {name}: finished before, reused", flush=True)
        return run_dir
    if run_dir.exists():
        raise UsageError(f"{run_dir} holds an unfinished run: continue it with --resume, or remove it")
    command = [sys.executable, "-m", "search.run", "--results-dir", str(results_dir), "--name", name, *options]
    started = time.monotonic()
    print(f"  {name}: {' '.join(command[1:])}", flush=True)
    log = results_dir / f"{name}.log"
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()).returncode
    if code != 0:
        raise UsageError(f"search.run {name} ended with exit code {code}; see {log}")
    print(f"  {name}: {time.monotonic() - started:.0f} s", flush=True)
    return run_dir


def trial_seconds(run_dir: Path) -> float:
    trials = pd.read_parquet(run_dir / "trials.parquet")
    return float(trials["epoch_seconds"].sum())


def epoch_seconds_against(run_dir: Path, base: Path) -> float | None:
    """How long the run's trainings took against another run's, on the reference points both trained (by
    preset): the median over them of the ratio of their summed epoch seconds. Budgets are trial-seconds, so a
    run in a slower sitting (ratio above 1) trains fewer trials for the same budget. None without such points."""
    def seconds(run: Path) -> pd.DataFrame:
        trials = pd.read_parquet(run / "trials.parquet", columns=["preset", "epoch", "epoch_seconds"])
        trials = trials.dropna(subset=["preset"])
        return trials.groupby("preset").agg(seconds=("epoch_seconds", "sum"), epochs=("epoch", "count"))

    mine, theirs = seconds(run_dir), seconds(base)
    both = mine.merge(theirs, left_index=True, right_index=True, suffixes=("_mine", ""))
    both = both[(both["epochs_mine"] == both["epochs"]) & (both["seconds"] >= 1.0)]  # not head only's 0.2 s
    return float(np.median(both["seconds_mine"] / both["seconds"])) if len(both) else None


def _scored(run_dir: Path) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    front = json.loads((run_dir / "frontier.json").read_text())
    outputs = dict(np.load(run_dir / "test_outputs.npz"))
    return front, outputs, outputs.pop("labels")


def _front_on_test(run_dir: Path, regression: bool = False):
    """The returned front's points: their test predictions, parameters, the labels, the metric and reference.

    The reference's metric is the best constant prediction's on the test rows (for classification; the run's
    validation majority for regression): a front scores only where it beats guessing on the rows it is scored
    on. The run's own reference is the validation split's majority, which on a small, unbalanced validation
    split can lie above every test score (it did on the convention sentences: 0.617 against a test majority
    near 0.56)."""
    from search import metric_function, predictions  # the product's own scoring

    front, outputs, labels = _scored(run_dir)
    points = [p for p in front["points"] if p["trial_id"] in outputs]
    preds = np.stack([predictions(outputs[p["trial_id"]], regression) for p in points])
    classes = 0 if regression else int(max(labels.max(), preds.max())) + 1
    score = metric_function(front["metric"], regression, classes)
    baseline = front["reference_point"]["metric"] if regression else max(
        float(score(np.full((1, len(labels)), c), labels)[0]) for c in range(classes))
    reference = (baseline, front["reference_point"]["log10_params"])
    return preds, [p["trainable_params"] for p in points], labels, score, reference


def test_hypervolume(run_dir: Path, regression: bool = False, seed: int = 0, against: Path | None = None) -> dict:
    """The returned front's hypervolume on the test split, with a bootstrap interval over test rows; with
    `against` (another run scored on the same rows), also the difference of the two hypervolumes with a
    paired interval (the same resampled rows for both fronts)."""
    from search import hypervolume

    preds, params, labels, score, reference = _front_on_test(run_dir, regression)
    other = _front_on_test(against, regression) if against is not None else None
    if other is not None and not np.array_equal(other[2], labels):
        raise UsageError(f"{run_dir} and {against} were scored on different test rows")
    value = hypervolume(list(score(preds, labels)), params, reference)
    rng = np.random.default_rng(seed)
    resampled, differences = [], []
    for _ in range(RESAMPLES):
        rows = rng.integers(0, len(labels), len(labels))
        mine = hypervolume(list(score(preds[:, rows], labels[rows])), params, reference)
        resampled.append(mine)
        if other is not None:
            differences.append(mine - hypervolume(list(other[3](other[0][:, rows], labels[rows])), other[1], reference))
    low, high = np.percentile(resampled, [2.5, 97.5])
    out = {"test_hypervolume": float(value), "low": float(low), "high": float(high), "front_points": len(params),
           "reference_metric": reference[0]}
    if other is not None:
        difference = value - hypervolume(list(other[3](other[0], labels)), other[1], reference)
        d_low, d_high = np.percentile(differences, [2.5, 97.5])
        out["minus_presets"] = {"difference": float(difference), "low": float(d_low), "high": float(d_high),
                                "above_in_resamples": float(np.mean(np.asarray(differences) > 0))}
    return out


def cheapest_within_noise(run_dir: Path, full_run: Path, regression: bool = False) -> dict | None:
    """The fewest-parameter scored sub-network of a run not significantly worse than the presets run's full
    fine-tuning on the same test rows."""
    from search import not_worse, paired_test

    front, outputs, labels = _scored(run_dir)
    full_front, full_outputs, full_labels = _scored(full_run)
    if not np.array_equal(labels, full_labels):
        raise UsageError(f"{run_dir} and {full_run} were scored on different test rows")
    full_id = next(p["trial_id"] for p in full_front["references"] if (p.get("preset") or "").split("#")[0] == "full")
    scored = {p["trial_id"]: p for p in [*front.get("references", []), *front["points"]] if p["trial_id"] in outputs}
    within = [p for t, p in scored.items()
              if not_worse(paired_test(outputs[t], full_outputs[full_id], labels, front["metric"], regression))]
    if not within:
        return None
    pick = min(within, key=lambda p: (p["trainable_params"], -p["test_metric"]))
    return {"selection": pick["selection"], "trainable_params": pick["trainable_params"],
            "test_metric": pick["test_metric"], "preset": pick.get("preset")}


KINDS = ("head only", "norms and biases", "LoRA", "LoRA and whole modules", "whole modules")
LORA_KINDS = tuple(kind for kind in KINDS if kind.startswith("LoRA"))  # the kinds that train an adapter
SIZE_BANDS = (30_000, 300_000, 1_000_000, 5_000_000)  # upper ends; above the last: full fine-tuning's size


def ticket_kind(units: list[str]) -> str:
    """What a sub-network trains besides the head, by its units ("3.ffn.in:lora8", "0.value:bias",
    "1.attn.norm", "2.ffn.out"): LoRA adapters (with biases and norms, or also with whole linear modules), whole
    linear modules or embeddings, or only norms and biases."""
    if not units:
        return "head only"
    parts = [unit.split(":", 1) for unit in units]
    lora = any(len(p) == 2 and p[1].startswith("lora") for p in parts)
    whole = any(len(p) == 1 and not p[0].endswith("norm") for p in parts)
    if lora:
        return "LoRA and whole modules" if whole else "LoRA"
    return "whole modules" if whole else "norms and biases"


def scored_tickets(run_dir: Path) -> list[dict]:
    """Every sub-network the run scored on test rows (its front and its reference points), with its kind."""
    front = json.loads((run_dir / "frontier.json").read_text())
    on_front = {p["trial_id"] for p in front["points"]}
    seen, tickets = set(), []
    for p in [*front["points"], *front.get("references", [])]:
        if p["trial_id"] in seen or p.get("test_metric") is None:
            continue
        seen.add(p["trial_id"])
        tickets.append({"trial_id": p["trial_id"], "kind": ticket_kind(p.get("units") or []),
                        "preset": p.get("preset"), "trainable_params": p["trainable_params"],
                        "validation_metric": p["metric"], "test_metric": p["test_metric"],
                        "on_validation_front": p["trial_id"] in on_front,
                        "not_worse_than_full": bool(p.get("not_worse_than_full"))})
    return sorted(tickets, key=lambda t: t["trainable_params"])


def _band(params: int) -> str:
    low = 0
    for high in SIZE_BANDS:
        if params <= high:
            return f"{_short(low)}-{_short(high)}"
        low = high
    return f"over {_short(low)}"


def _short(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}K" if n else "0"


def where_tickets_sit(row: dict) -> list[str]:
    """A markdown table: per size band, the best test metric each kind of ticket reached in this run (its
    parameters; * where not significantly worse than full fine-tuning)."""
    tickets = row.get("tickets") or []
    bands = list(dict.fromkeys(_band(t["trainable_params"]) for t in tickets))
    kinds = [k for k in KINDS if any(t["kind"] == k for t in tickets)]
    lines = [f"{row['strategy']}, seed {row['seed']}: the best test score of each kind of ticket it scored, "
             "by size (* within noise of full fine-tuning)", "",
             "| parameters | " + " | ".join(kinds) + " |", "| --- |" + " --- |" * len(kinds)]
    for band in bands:
        cells = []
        for kind in kinds:
            mine = [t for t in tickets if t["kind"] == kind and _band(t["trainable_params"]) == band]
            best = max(mine, key=lambda t: t["test_metric"], default=None)
            star = "*" if best and best["not_worse_than_full"] else ""
            cells.append("" if best is None else f"{best['test_metric']:.3f}{star} "
                         f"({best['preset'] or 'searched'}, {best['trainable_params']:,})")
        lines.append(f"| {band} | " + " | ".join(cells) + " |")
    return lines


def lora_against_the_rest(runs: list[dict]) -> list[str]:
    """A markdown table over seeds: per size band up to 5M parameters, the best test score of a ticket with
    LoRA (the `lora` search's) against the best without LoRA that either search scored (the `lora` search's
    others and the `default` search's), with a count of the bands where LoRA's is at least the other's."""
    seeds = sorted({r["seed"] for r in runs if r["strategy"] == "lora" and r.get("tickets")}
                   & {r["seed"] for r in runs if r["strategy"] == "default" and r.get("tickets")})
    if not seeds:
        return []
    bands = [_band(high) for high in SIZE_BANDS]
    cells: dict[tuple[str, int], tuple[dict | None, dict | None]] = {}
    for seed in seeds:
        tickets = [(r["strategy"], t) for r in runs if r["seed"] == seed and r["strategy"] in ("lora", "default")
                   for t in r["tickets"]]
        for band in bands:
            here = [(s, t) for s, t in tickets if _band(t["trainable_params"]) == band]
            with_lora = [t for s, t in here if s == "lora" and t["kind"] in LORA_KINDS]
            without = [t for _, t in here if t["kind"] not in LORA_KINDS]
            cells[band, seed] = (max(with_lora, key=lambda t: t["test_metric"], default=None),
                                 max(without, key=lambda t: t["test_metric"], default=None))

    def cell(t: dict | None) -> str:
        return "-" if t is None else f"{t['test_metric']:.3f}{'*' if t['not_worse_than_full'] else ''}"

    lines = ["LoRA against the rest: per size band, the best test score of a ticket with LoRA / the best without "
             "(either search's; * within noise of full fine-tuning)", "",
             "| parameters | " + " | ".join(f"seed {s}" for s in seeds) + " |", "| --- |" + " --- |" * len(seeds)]
    for band in bands:
        lines.append(f"| {band} | " + " | ".join(f"{cell(a)} / {cell(b)}" for a, b in
                                                  (cells[band, s] for s in seeds)) + " |")
    both = [(a, b) for a, b in cells.values() if a is not None and b is not None]
    level = sum(a["test_metric"] >= b["test_metric"] for a, b in both)
    lines += ["", f"- LoRA's best at least the best without LoRA in {level} of {len(both)} bands with both "
              "(seeds x bands)"]
    return lines


def validation_hypervolume_at(run_dir: Path, seconds: float) -> float:
    """The run's validation hypervolume over the trials that reached the full budget once `seconds`
    trial-seconds were spent (epochs counted in the order they were reported)."""
    from search import hypervolume

    front = json.loads((run_dir / "frontier.json").read_text())
    trials = pd.read_parquet(run_dir / "trials.parquet").dropna(subset=["timestamp"]).sort_values("timestamp")
    trials = trials[np.cumsum(trials["epoch_seconds"].to_numpy()) <= seconds + 1e-9]
    done = trials[trials["epoch"] >= front["max_epochs"]]
    if done.empty:
        return 0.0
    reference = (front["reference_point"]["metric"], front["reference_point"]["log10_params"])
    return float(hypervolume(list(done["metric"]), list(done["trainable_params"]), reference))


def write_results(out: Path, command: str, runs: list[dict]) -> None:
    """Write this invocation's rows into `out`, keeping the rows of earlier invocations (other seeds) that
    it did not run again: seeds can be run one sitting at a time. A row run again replaces the old one."""
    previous = json.loads(out.read_text()) if out.is_file() else {}
    mine = {(r["strategy"], r["seed"]) for r in runs}
    kept = [r for r in previous.get("runs", []) if (r["strategy"], r["seed"]) not in mine]
    order = list(STRATEGIES)
    merged = sorted([*kept, *runs], key=lambda r: (r["seed"], order.index(r["strategy"])
                                                    if r["strategy"] in order else len(order)))
    commands = previous.get("commands", [previous["command"]] if "command" in previous else [])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"commands": [*[c for c in commands if c != command], command], "runs": merged},
                              indent=1) + "\n")


def report(path: Path) -> str:
    """A results file as a markdown table, and what it says of the default against the presets and random."""
    if not path.is_file():
        raise UsageError(f"results file not found: {path}")
    try:
        return _report(path.name, json.loads(path.read_text())["runs"])
    except (ValueError, KeyError, TypeError, AttributeError):  # not JSON, or rows without the fields written here
        raise UsageError(f"{path} is not a results file of bench/real_runs.py") from None


def _ratio(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}"


def _speed(ratio: float | None) -> str:
    return "" if ratio is None else f"; its trainings took {ratio:.2f} times as long"


def _report(name: str, runs: list[dict]) -> str:
    lines = [f"{name}:", "",
             "| strategy, seed | trials | trial-seconds | test hypervolume (95% interval) | minus the presets' "
             "(paired 95% interval) | front points | cheapest not significantly worse than full (test metric) | "
             "epoch seconds against the presets run's |",
             "| --- | ---: | ---: | --- | --- | ---: | --- | ---: |"]
    for r in runs:
        diff = r.get("minus_presets")
        against = "" if diff is None else (f"{diff['difference']:+.3f} ({diff['low']:+.3f} to {diff['high']:+.3f}; "
                                           f"above in {100 * diff['above_in_resamples']:.0f}% of resamples)")
        pick = r.get("cheapest_within_noise_of_full")
        cheapest = "none" if pick is None else (
            f"{'`' + pick['preset'] + '`' if pick.get('preset') else 'a searched mix'}, "
            f"{pick['trainable_params']:,} params ({pick['test_metric']:.3f})")
        lines.append(f"| {r['strategy']}, {r['seed']} | {r['trials']} | {r['trial_seconds']:,.0f} | "
                     f"{r['test_hypervolume']:.3f} ({r['low']:.3f}-{r['high']:.3f}) | {against} | "
                     f"{r['front_points']} | {cheapest} | {_ratio(r.get('epoch_seconds_against_presets'))} |")
    lines.append("")
    for strategy in [s for s in STRATEGIES if s != "presets"]:
        mine = [r for r in runs if r["strategy"] == strategy and r.get("minus_presets")]
        if not mine:
            continue
        above = sum(r["minus_presets"]["difference"] > 0 for r in mine)
        beyond = sum(r["minus_presets"]["low"] > 0 for r in mine)
        lines.append(f"- {strategy}: above the presets' test front in {above} of {len(mine)} seeds "
                     f"({beyond} beyond the paired interval)")
    paired = [r for r in runs if r["strategy"] == "lora" and r.get("minus_default")]
    if paired:
        lines.append("- lora against the same space without LoRA (default), paired on the test rows: " + "; ".join(
            f"seed {r['seed']} {r['minus_default']['difference']:+.3f} ({r['minus_default']['low']:+.3f} to "
            f"{r['minus_default']['high']:+.3f}{_speed(r['minus_default'].get('epoch_seconds_against_default'))})"
            for r in paired)
            + f"; at least the default's in {sum(r['minus_default']['difference'] >= 0 for r in paired)} of "
            f"{len(paired)} seeds")
    for r in runs:
        if r["strategy"] in ("default", "lora") and r.get("tickets"):
            lines += ["", *where_tickets_sit(r)]
    if against := lora_against_the_rest(runs):
        lines += ["", *against]
    default = [r["test_hypervolume"] for r in runs if r["strategy"] == "default"]
    random = [r["test_hypervolume"] for r in runs if r["strategy"] == "random"]
    if default and random:
        median = float(np.median(random))
        lines.append(f"- default above random search's median test hypervolume ({median:.3f}) in "
                     f"{sum(v > median for v in default)} of {len(default)} seeds")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = ArgumentParser(prog="bench/real_runs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rotten_tomatoes")
    parser.add_argument("--data", default=None)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--granularity", default="unit")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-factor", type=float, default=4.0,
                        help="the default's and random search's trial-seconds, as a multiple of the presets' (4)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--results-dir", type=Path, default=Path("results/real_runs"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", nargs="+", type=Path, default=None, metavar="FILE",
                        help="print results files as markdown tables and seed counts; runs nothing")
    parser.add_argument("extra", nargs="*", help="after --: more search.run options, for every run")

    def body() -> int:
        args = parser.parse_args(argv)
        if args.report:
            print("\n\n".join(report(path) for path in args.report))
            return 0
        data = (["--data", args.data, "--text-column", args.text_column, "--label-column", args.label_column]
                if args.data else ["--task", args.task])
        task = Path(args.data).stem if args.data else args.task
        common = [*data, "--granularity", args.granularity, *args.extra]
        wanted = args.strategies.split(",")
        if "presets" not in wanted:
            raise UsageError("the presets run sets the budget and the full fine-tuning reference: keep it")
        args.results_dir.mkdir(parents=True, exist_ok=True)
        out = args.out or Path("bench/results") / f"real_runs-{task}-{args.granularity}.json"
        runs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            prefix = f"{task}-{args.granularity}-seed{seed}"
            presets = search_run(f"{prefix}-presets", [*common, "--seed", str(seed), *STRATEGIES["presets"]],
                                 args.results_dir)
            budget = args.budget_factor * trial_seconds(presets)
            done: dict[str, Path] = {}
            for name in wanted:
                run_dir = presets if name == "presets" else search_run(
                    f"{prefix}-{name}", [*common, "--seed", str(seed), "--trial-seconds", f"{budget:.0f}",
                                         *STRATEGIES[name]], args.results_dir)
                trials = pd.read_parquet(run_dir / "trials.parquet")
                row = {"strategy": name, "seed": seed, "run": run_dir.name, "budget_factor": args.budget_factor,
                       "budget_seconds": budget,
                       "trial_seconds": trial_seconds(run_dir), "trials": int(trials["trial_id"].nunique()),
                       "full_budget_trials": int((trials["epoch"] >= trials["epoch"].max()).sum()),
                       **test_hypervolume(run_dir, seed=seed, against=None if name == "presets" else presets),
                       "cheapest_within_noise_of_full": cheapest_within_noise(run_dir, presets),
                       "tickets": scored_tickets(run_dir),
                       "epoch_seconds_against_presets": None if name == "presets" else epoch_seconds_against(
                           run_dir, presets),
                       "validation_hypervolume_at_presets_cost": validation_hypervolume_at(
                           run_dir, trial_seconds(presets))}
                done[name] = run_dir
                runs.append(row)
                if {"lora", "default"} <= set(done):  # the same space with and without LoRA, on the same rows
                    lora_row = next(r for r in runs if r["seed"] == seed and r["strategy"] == "lora")
                    lora_row["minus_default"] = {
                        **test_hypervolume(done["lora"], seed=seed, against=done["default"])["minus_presets"],
                        "epoch_seconds_against_default": epoch_seconds_against(done["lora"], done["default"])}
                print(f"  {name} seed {seed}: test HV {row['test_hypervolume']:.4f} ({row['low']:.4f}-"
                      f"{row['high']:.4f}), {row['trials']} trials, {row['trial_seconds']:.0f} trial-s", flush=True)
                write_results(out, "bench/real_runs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                              runs)
        print(f"wrote {out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
