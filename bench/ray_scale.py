"""Real Ray at scale: the product's search on replayed trials, many at once, against Ray's ASHA + OptunaSearch.

    .venv/bin/python bench/ray_scale.py [--concurrency 8,32,64] [--trials 100,1000] [--epoch-seconds 1]
        [--nodes 2] [--cpus-per-node 1] [--arms product,peer] [--model minilm] [--skip C:N,...]
        [--out bench/results/ray_scale.json]

A `ray.cluster_utils.Cluster` on this machine (a head that runs no trials, `--nodes` worker nodes of
`--cpus-per-node` CPUs) runs searches whose trials replay a synthetic table covering the model's whole default
search space (every switch setting, 3 epochs of `--epoch-seconds` each, slept for real): the CPU work of
training is taken away, what is left is what the search itself costs. Trials ask for a fraction of a CPU so
that C of them run at once (C = `--concurrency`).

Arms, at the same C and trial count, one after the other on the same cluster:
- `product`: what `python -m search.run --replay TABLE --replay-time-scale 1` builds (search.prepare,
  search.launched: the sequence search.run runs its Tuner in, as many trials waiting for placement as the
  cluster holds, search.build_tuner: Ray Tune with ParetoOptunaSearch, its Optuna journal, Pareto-ASHA with its
  state file, the paper's reference points first, every epoch checkpointed), with `--grace-period 1` so that
  Pareto-ASHA decides after every epoch below the last;
- `peer`: Ray Tune's own `ASHAScheduler` (grace period 1, on the metric) with Ray's `OptunaSearch` (its default
  sampler, both objectives), over the same define-by-run space and the same replay trainable, as its users
  set it up.

Reported per arm, C and trial count: the wall time of `Tuner.fit()`, the results reported, results per second,
the minimal theoretical time (the epochs' seconds summed over every reported result, divided by C: perfect
packing, no overhead), the overhead over it (wall / minimal - 1; Ray Tune's own benchmarks aim at 20% at most),
the most trials seen running at once, and the driver's CPU seconds.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from spaces import WITHOUT_LORA, ArgumentParser, UsageError, run_cli  # noqa: E402

EPOCHS = 3


def synthetic_table(space, taxonomy, path: Path, epoch_seconds: float, seed: int = 0) -> int:
    """Curves for every switch setting of `space` (learning rate aside): a larger sub-network learns more,
    with a little noise; each epoch takes `epoch_seconds`. Returns the number of sub-networks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spaces import refs_from_switches

    names = list(space.switch_units)
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("units", "epoch", "metric", "eval_loss", "epoch_seconds")}
    count = 0
    for combo in itertools.product(*(space.values_of[n] for n in names)):
        units = refs_from_switches(space.switch_units, dict(zip(names, combo)))
        quality = 0.55 + 0.04 * math.log10(taxonomy.count(units)) + float(rng.normal(0, 0.01))
        for epoch in range(1, EPOCHS + 1):
            rows["units"].append(units)
            rows["epoch"].append(epoch)
            rows["metric"].append(quality - 0.04 * (EPOCHS - epoch))
            rows["eval_loss"].append(1.0 - quality + 0.02 * (EPOCHS - epoch))
            rows["epoch_seconds"].append(epoch_seconds)
        count += 1
    pq.write_table(pa.table(rows), path)
    return count


def _counter():
    from ray import tune

    class Counter(tune.Callback):
        """Counts results and the epoch-seconds they stand for, in the driver."""

        def __init__(self):
            self.results, self.seconds, self.trials, self.peak = 0, 0.0, set(), 0

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results += 1
            self.seconds += float(result.get("epoch_seconds", 0.0))
            self.trials.add(trial.trial_id)
            self.peak = max(self.peak, sum(1 for t in trials if t.status == "RUNNING"))

    return Counter()


def _reason(error: BaseException) -> str:
    """A failed trial's error, its type and first line (the innermost cause Ray wraps)."""
    cause = getattr(error, "cause", None) or error.__cause__ or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0][:200] if text else ''}"


def _measure(fit, counter, concurrency: int) -> dict:
    cpu, started = time.process_time(), time.monotonic()
    grid = fit()
    wall = time.monotonic() - started
    failed = [r.error for r in grid if r.error is not None]
    errors = len(failed)
    minimal = counter.seconds / concurrency
    return {"wall_seconds": wall, "results": counter.results, "trials": len(counter.trials), "errors": errors,
            "error_reasons": sorted({_reason(e) for e in failed}),
            "results_per_second": counter.results / wall, "minimal_seconds": minimal, "peak_running": counter.peak,
            "overhead": wall / minimal - 1 if minimal else None, "driver_cpu_seconds": time.process_time() - cpu}


def product_arm(base: list[str], folder: Path, name: str, concurrency: int, trials: int, cpus: float) -> dict:
    """The product's own search (search.prepare, search.launched and search.build_tuner, as search.run
    assembles them)."""

    import search

    config = search.parse_args([*base, "--num-samples", str(trials), "--cpus-per-trial", f"{cpus / concurrency:.6f}",
                                "--results-dir", str(folder), "--name", name])
    prep = search.prepare(config)
    prep.run_dir.mkdir(parents=True)
    search.write_run_info(prep)
    counter = _counter()
    with search.launched(prep) as pending:  # as search.run and --resume run their Tuner; the peer's runs after it
        tuner = search.build_tuner(prep, [counter])
        return {**_measure(tuner.fit, counter, concurrency), "max_pending_trials": pending}


def peer_arm(base: list[str], folder: Path, name: str, concurrency: int, trials: int, cpus: float) -> dict:
    """Ray Tune's ASHA with Ray's OptunaSearch over the same space and trainable, set up as their users would."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    import search
    from trainables import ReplayTable, replay

    config = search.parse_args([*base, "--num-samples", str(trials), "--results-dir", str(folder), "--name", name])
    prep = search.prepare(config)
    metric = prep.task.metric
    counter = _counter()
    table = ReplayTable.from_parquet(config.replay, metric)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(replay, table=table, max_epochs=config.max_epochs,
                                                 time_scale=config.replay_time_scale),
                            {"cpu": cpus / concurrency}),
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(space=prep.space, metric=[metric, "trainable_params"], mode=["max", "min"],
                                    seed=config.seed),
            scheduler=ASHAScheduler(metric=metric, mode="max", time_attr="epoch", max_t=config.max_epochs,
                                    grace_period=1, reduction_factor=3),
            num_samples=trials,
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(folder), callbacks=[counter], verbose=0),
    )
    return _measure(tuner.fit, counter, concurrency)


ARMS = {"product": product_arm, "peer": peer_arm}


def _line(row: dict) -> str:
    return (f"{row['arm']:>8} C={row['concurrency']:<3} N={row['trials_planned']:<5} {row['wall_seconds']:7.1f} s, "
            f"{row['results']} results ({row['results_per_second']:.1f}/s), minimal {row['minimal_seconds']:.1f} s, "
            f"overhead {100 * row['overhead']:.0f}%, driver CPU {row['driver_cpu_seconds']:.1f} s, "
            f"{row['errors']} errors, at most {row['peak_running']} running")


def _numbers(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes whole numbers, e.g. 8,32,64, not '{text}'") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} takes positive whole numbers, not '{text}'")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="bench/ray_scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="8,32,64")
    parser.add_argument("--trials", default="100,1000")
    parser.add_argument("--skip", default="", help="C:N pairs not to run (e.g. 8:1000: its minimal time is long)")
    parser.add_argument("--epoch-seconds", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--arms", default="product,peer")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--table", type=Path, default=Path("bench/data/ray_scale-table.parquet"),
                        help="where the synthetic table is written (made again when --epoch-seconds changes)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ray_scale.json"))

    def body() -> int:
        args = parser.parse_args(argv)
        concurrency, counts = _numbers(args.concurrency, "--concurrency"), _numbers(args.trials, "--trials")
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        if not arms or any(a not in ARMS for a in arms):
            raise UsageError(f"--arms takes {', '.join(ARMS)}, not '{args.arms}'")
        if args.epoch_seconds <= 0 or args.nodes < 1 or args.cpus_per_node < 1:
            raise UsageError("--epoch-seconds must be positive, --nodes and --cpus-per-node at least 1")
        skip = {tuple(int(x) for x in pair.split(":")) for pair in args.skip.split(",") if pair.strip()}
        import ray
        from ray.cluster_utils import Cluster

        import search
        from search.driver.trials import init_ray
        from spaces import SpaceConfig, SubnetworkSpace, load_taxonomy, resolve_model, resolve_pooling

        pooling = resolve_pooling("auto", resolve_model(args.model))
        taxonomy = load_taxonomy(args.model, 2, pooling)
        # the space without LoRA (39,366 module-granular sub-networks): the synthetic table holds every one
        space = SubnetworkSpace(taxonomy, SpaceConfig(values=WITHOUT_LORA))
        stamp = args.table.with_suffix(".json")
        wanted = {"model": args.model, "epoch_seconds": args.epoch_seconds, "size": space.size()}
        if not args.table.is_file() or not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
            args.table.parent.mkdir(parents=True, exist_ok=True)
            made = synthetic_table(space, taxonomy, args.table, args.epoch_seconds)
            stamp.write_text(json.dumps(wanted))
            print(f"table: {made:,} sub-networks x {EPOCHS} epochs of {args.epoch_seconds:g} s -> {args.table}")
        cpus = args.nodes * args.cpus_per_node
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(args.nodes):
            cluster.add_node(num_cpus=args.cpus_per_node)
        cluster.wait_for_nodes()
        base = ["--model", args.model, "--replay", str(args.table.resolve()), "--replay-time-scale", "1",
                "--grace-period", "1", "--max-epochs", str(EPOCHS), "--address", cluster.address,
                "--switch-values", ",".join(WITHOUT_LORA)]  # the synthetic table's space
        init_ray(search.parse_args(base))  # the product's own join: its code shipped to the workers
        rows = []
        try:
            with tempfile.TemporaryDirectory() as folder:
                for n in counts:
                    for c in concurrency:
                        if (c, n) in skip:
                            continue
                        for arm in arms:
                            name = f"{arm}-c{c}-n{n}"
                            row = {"arm": arm, "concurrency": c, "trials_planned": n, "cpus": cpus,
                                   "epoch_seconds": args.epoch_seconds,
                                   **ARMS[arm](base, Path(folder), name, c, n, cpus)}
                            rows.append(row)
                            print(_line(row), flush=True)
                            args.out.parent.mkdir(parents=True, exist_ok=True)
                            args.out.write_text(json.dumps({
                                "command": "bench/ray_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                                "machine": f"{os.cpu_count()} cores", "rows": rows}, indent=1) + "\n")
        finally:
            ray.shutdown()
            cluster.shutdown()
        print(f"wrote {args.out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
