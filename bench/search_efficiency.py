"""How much compute each search strategy needs to find a recorded table's Pareto front.

    .venv/bin/python bench/search_efficiency.py [--table bench/tables/minilm-rotten_tomatoes-modules.parquet]
        [--seeds 10] [--strategies default,random,...] [--budget 384] [--out bench/results]

Every strategy runs the real searcher (`search._searcher.ParetoOptunaSearch`, Optuna's samplers)
and the real schedulers on Ray Tune, with trials that replay the table's learning curves
(`trainables.replay`) instead of training. Compute is counted in trial-epochs, in the order Ray
delivered the results. After each one, the hypervolume of the sub-networks trained to the full
budget so far, on (metric, log10 trainable params) against a fixed reference point (the table's
majority-class metric, log10 of all parameters), is divided by that of the table's true front.

Strategies: `random` (random search, full budget), `asha+tpe` (ASHA on the metric alone, with
multi-objective TPE), `nsga2` (NSGA-II, full budget), `random+pareto-asha`, and `default` (TPE
with the Pareto-aware ASHA: what `python -m search.run` does). Each runs with and without the
paper's reference points (head only, LayerNorms, each module type alone, everything) as its first
trials. Repeated proposals are answered from what the run measured (they cost no compute) and
counted. Prints a table (median over seeds) and writes a plot and the per-run curves.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from search import hypervolume, pareto_mask, reference_point  # noqa: E402

STRATEGIES = {  # name -> (sampler, scheduler)
    "random": ("random", "none"),
    "asha+tpe": ("tpe", "asha"),
    "nsga2": ("nsga2", "none"),
    "random+pareto-asha": ("random", "pareto-asha"),
    "default": ("tpe", "pareto-asha"),
}
TARGET = 0.95


class Table:
    """A recorded table: one switch set per sub-network, its units, cost, learning rate and final metric."""

    def __init__(self, path: str):
        table = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        rows = table.to_pylist()
        self.path = path
        self.epochs = max(r["epoch"] for r in rows)
        self.metric = rows[0].get("metric_name") or "accuracy"
        self.switches = list(max((r["switches"] for r in rows), key=len))
        self.entries = {}
        for r in rows:
            entry = self.entries.setdefault(frozenset(r["switches"]), {"units": r["units"], "lr": r["lr"],
                                                                        "params": r["trainable_params"]})
            if r["epoch"] == self.epochs:
                entry["final"] = r["metric"]
        finals = [e["final"] for e in self.entries.values()]
        params = [e["params"] for e in self.entries.values()]
        # Tables without the metadata (other recorders): the worst final metric, 10x the largest sub-network.
        self.reference = reference_point(float(meta.get("majority_metric", min(finals))),
                                         int(meta.get("total_params", 10 * max(params))))
        self.true_hv = hypervolume(finals, params, self.reference)
        self.rows = rows

    def front(self) -> list[tuple[str, int, float]]:
        names = list(self.entries)
        finals = [self.entries[n]["final"] for n in names]
        params = [self.entries[n]["params"] for n in names]
        mask = pareto_mask(finals, params)
        out = [(" + ".join(s for s in self.switches if s in n) or "head only", p, f)
               for n, p, f, m in zip(names, params, finals, mask) if m]
        return sorted(out, key=lambda x: x[1])

    def seed_points(self) -> list[dict]:
        """The paper's reference points: head only, each switch alone (LayerNorms, each module), everything."""
        points = [{s: "off" for s in self.switches}]
        points += [{s: ("all" if s == one else "off") for s in self.switches} for one in self.switches]
        points.append({s: "all" for s in self.switches})
        return points


class TableSpace:
    """Optuna define-by-run space over a table's switches (on/off each); lr is the table's rule."""

    def __init__(self, table: Table):
        self.switches = table.switches
        self.entries = table.entries
        self.presets = {frozenset(): "head"} | {frozenset([s]): s for s in self.switches}
        self.presets[frozenset(self.switches)] = "full"

    def __call__(self, trial) -> dict:
        on = frozenset(s for s in self.switches if trial.suggest_categorical(s, ["off", "all"]) == "all")
        entry = self.entries[on]
        return {"units": entry["units"], "trainable_params": entry["params"], "lr": entry["lr"],
                "selection": " + ".join(s for s in self.switches if s in on) or "head only",
                "preset": self.presets.get(on)}


def run_once(table: Table, strategy: str, seed: int, seeded: bool, budget: int, concurrency: int,
             time_scale: float) -> dict:
    """One search; returns its results in delivery order and the repeats the searcher answered itself."""
    from ray import tune

    from search import ParetoOptunaSearch, make_sampler, make_scheduler
    from trainables import ReplayTable, replay

    sampler_name, scheduler_name = STRATEGIES[strategy]
    events: list[tuple[str, int, float, int]] = []

    class Record(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            events.append((trial.trial_id, int(result["epoch"]), float(result[table.metric]),
                           int(result["trainable_params"])))

    class Budget(tune.Stopper):
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return len(events) >= budget

    searcher = ParetoOptunaSearch(
        space=TableSpace(table), metric=[table.metric, "trainable_params"], mode=["max", "min"],
        points_to_evaluate=table.seed_points() if seeded else None, sampler=make_sampler(sampler_name, seed),
        max_epochs=table.epochs,
    )
    replay_table = ReplayTable.from_rows(table.rows, table.metric)
    trainable = tune.with_resources(
        tune.with_parameters(replay, table=replay_table, max_epochs=table.epochs, time_scale=time_scale),
        {"cpu": 2 / concurrency},
    )
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=make_scheduler(scheduler_name, table.metric, table.epochs),
                num_samples=budget, max_concurrent_trials=concurrency, reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=storage, name="run", stop=Budget(), callbacks=[Record()], verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        tuner.fit()
    return {"strategy": strategy, "seed": seed, "seeded": seeded, "events": events[:budget],
            "repeats": searcher.repeats}


def hv_curve(table: Table, events) -> list[float]:
    """HV fraction after each trial-epoch: sub-networks count once they reach the full budget."""
    metric, params, curve, hv = [], [], [], 0.0
    for _, epoch, value, cost in events:
        if epoch == table.epochs:
            metric.append(value)
            params.append(cost)
            hv = hypervolume(metric, params, table.reference) / table.true_hv
        curve.append(hv)
    return curve


def compute_to_reach(curve: list[float], target: float) -> float:
    return next((i + 1 for i, v in enumerate(curve) if v >= target - 1e-12), math.inf)


def summarise(table: Table, runs: list[dict], budget: int) -> list[dict]:
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in runs):
        for seeded in (True, False):
            group = [r for r in runs if r["strategy"] == strategy and r["seeded"] == seeded]
            if not group:
                continue
            curves = [hv_curve(table, r["events"]) for r in group]
            reach = [compute_to_reach(c, TARGET) for c in curves]

            def at(fraction, curves=curves):
                k = max(1, int(budget * fraction))
                return statistics.median(c[min(k, len(c)) - 1] if c else 0.0 for c in curves)

            out.append({
                "strategy": strategy, "seeded": seeded, "runs": len(group),
                "epochs_to_95": statistics.median(reach), "reached_95": sum(math.isfinite(x) for x in reach),
                "hv_at_quarter": at(0.25), "hv_at_half": at(0.5), "hv_at_budget": at(1.0),
                "trials": statistics.median(len({e[0] for e in r["events"]}) for r in group),
                "repeats": statistics.median(r["repeats"] for r in group),
            })
    return out


def plot(table: Table, runs: list[dict], budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    colors = dict(zip(STRATEGIES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, seeded in zip(axes, (True, False)):
        for strategy in dict.fromkeys(r["strategy"] for r in runs):
            curves = [hv_curve(table, r["events"]) for r in runs if r["strategy"] == strategy
                      and r["seeded"] == seeded]
            if not curves:
                continue
            grid = np.array([(c + [c[-1] if c else 0.0] * budget)[:budget] for c in curves])
            x = np.arange(1, budget + 1)
            ax.plot(x, np.median(grid, axis=0), label=strategy, color=colors[strategy])
            ax.fill_between(x, *np.percentile(grid, [25, 75], axis=0), color=colors[strategy], alpha=0.15)
        ax.axhline(TARGET, color="grey", lw=0.8, ls=":")
        ax.set_title("with the paper's reference points as seeds" if seeded else "without seeds")
        ax.set_xlabel("compute (trial-epochs)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hypervolume / true front's")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{Path(table.path).name}: median and quartiles over {max(r['seed'] for r in runs) + 1} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="bench/tables/minilm-rotten_tomatoes-modules.parquet")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--budget", type=int, default=None, help="trial-epochs per run (default: the table's size x "
                        "epochs, what an exhaustive search at full budget costs)")
    parser.add_argument("--concurrency", type=int, default=4, help="trials at once (as on 4 workers)")
    parser.add_argument("--time-scale", type=float, default=0.0, help="sleep this fraction of recorded epoch seconds")
    parser.add_argument("--no-unseeded", action="store_true", help="only runs seeded with the reference points")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)

    import ray

    table = Table(args.table)
    budget = args.budget or len(table.entries) * table.epochs
    strategies = [s.strip() for s in args.strategies.split(",")]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategy {unknown[0]} (known: {', '.join(STRATEGIES)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{table.path}: {len(table.entries)} sub-networks x {table.epochs} epochs; true front "
          f"(hypervolume {table.true_hv:.4f}, reference {table.reference[0]:.3f}, 1e{table.reference[1]:.2f}):")
    for name, params, value in table.front():
        print(f"  {value:.4f}  {params:>11,}  {name}")

    own_ray = not ray.is_initialized()
    if own_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    runs, started = [], time.perf_counter()
    for seed in range(args.seeds):
        for strategy in strategies:
            for seeded in (True,) if args.no_unseeded else (True, False):
                runs.append(run_once(table, strategy, seed, seeded, budget, args.concurrency, args.time_scale))
                print(f"  [{time.perf_counter() - started:5.0f}s] seed {seed} {strategy:<18} "
                      f"{'seeded' if seeded else 'no seeds'}: {len(runs[-1]['events'])} trial-epochs, "
                      f"HV {hv_curve(table, runs[-1]['events'])[-1]:.3f}, repeats {runs[-1]['repeats']}", flush=True)
    if own_ray:
        ray.shutdown()

    rows = summarise(table, runs, budget)
    stem = Path(args.table).stem
    (out / f"{stem}.search_efficiency.json").write_text(json.dumps(
        {"table": args.table, "budget": budget, "reference": table.reference, "true_hv": table.true_hv,
         "summary": rows, "runs": runs}, default=str))
    plot(table, runs, budget, out / f"{stem}.search_efficiency.png")
    print(f"\nmedian over {args.seeds} seeds; budget {budget} trial-epochs; target {TARGET:.0%} of the true "
          f"front's hypervolume")
    print(f"{'strategy':<19} {'seeds?':<7} {'epochs to 95%':>13} {'reached':>8} {'HV@1/4':>7} {'HV@1/2':>7} "
          f"{'HV@end':>7} {'trials':>7} {'repeats':>8}")
    for r in rows:
        print(f"{r['strategy']:<19} {'yes' if r['seeded'] else 'no':<7} {r['epochs_to_95']:>13} "
              f"{r['reached_95']:>5}/{r['runs']:<2} {r['hv_at_quarter']:>7.3f} {r['hv_at_half']:>7.3f} "
              f"{r['hv_at_budget']:>7.3f} {r['trials']:>7} {r['repeats']:>8}")
    print(f"wrote {out / (stem + '.search_efficiency.png')} and .json")


if __name__ == "__main__":
    main()
