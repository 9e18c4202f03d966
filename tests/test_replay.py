"""The replay trainable serves its table, and the search-efficiency benchmark runs on a recorded table."""

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray import tune

from trainables import ReplayTable, replay

REPO = Path(__file__).resolve().parent.parent
SWITCHES = ["a", "b", "c", "d"]


def _table(path: Path) -> Path:
    """A recorded-table file in the recorder's format: every subset of four switches, three epochs."""
    rows = []
    for bits in itertools.product((0, 1), repeat=len(SWITCHES)):
        on = [s for s, b in zip(SWITCHES, bits) if b]
        params = 10 + sum(10 ** (i + 2) for i, s in enumerate(SWITCHES) if s in on)
        quality = 0.6 + 0.04 * len(on) + (0.05 if "a" in on else 0.0)
        for epoch in (1, 2, 3):
            rows.append({"selection": " + ".join(on) or "head only", "switches": on,
                         "units": [f"{s}.unit" for s in on], "trainable_params": params, "lr": 1e-3,
                         "epoch": epoch, "metric": quality - 0.1 * (3 - epoch), "metric_name": "accuracy",
                         "eval_loss": 1.0 - quality + 0.01 * (3 - epoch), "epoch_seconds": 0.5 * epoch})
    table = pa.Table.from_pylist(rows).replace_schema_metadata({"majority_metric": "0.5", "total_params": "100000"})
    pq.write_table(table, path)
    return path


def test_replay_reports_the_table_epoch_by_epoch(ray_session, tmp_path):
    path = _table(tmp_path / "table.parquet")
    table = ReplayTable.from_parquet(path)
    configs = [{"units": ["a.unit", "c.unit"], "trainable_params": 10110}, {"units": [], "trainable_params": 10}]
    tuner = tune.Tuner(
        tune.with_parameters(replay, table=table, max_epochs=3),
        param_space={"units": tune.grid_search([c["units"] for c in configs]), "trainable_params": 1},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="replay", verbose=0),
    )
    results = tuner.fit()
    rows = pq.read_table(path).to_pylist()
    for result in results:
        history = result.metrics_dataframe.sort_values("epoch")
        expected = [r for r in rows if sorted(r["units"]) == sorted(result.config["units"])]
        expected.sort(key=lambda r: r["epoch"])
        assert history["epoch"].tolist() == [1, 2, 3]
        assert history["accuracy"].tolist() == pytest.approx([r["metric"] for r in expected])
        assert history["eval_loss"].tolist() == pytest.approx([r["eval_loss"] for r in expected])
        assert history["epoch_seconds"].tolist() == pytest.approx([r["epoch_seconds"] for r in expected])
    with pytest.raises(KeyError, match="not in the replay table"):
        table.curve(["z.unit"])


@pytest.mark.timeout(600)
def test_search_efficiency_benchmark_on_a_small_table(ray_session, tmp_path):
    spec = importlib.util.spec_from_file_location("search_efficiency", REPO / "bench" / "search_efficiency.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["search_efficiency"] = bench
    spec.loader.exec_module(bench)
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(bench)  # its space and callbacks travel to Ray by value
    path = _table(tmp_path / "table.parquet")
    table = bench.Table(str(path))
    # The true front here is the head alone, then "a", "a + b", ...: each added switch is better and dearer.
    assert [name for name, _, _ in table.front()] == ["head only", "a", "a + b", "a + b + c", "a + b + c + d"]
    assert table.true_hv > 0

    # A curve counts a sub-network only once it reaches the full budget.
    head, a = [(0.6, 10), (0.65 + 0.04, 110)]
    events = [("t1", 1, 0.4, 10), ("t1", 2, 0.5, 10), ("t1", 3, head[0], head[1]), ("t2", 3, a[0], a[1])]
    curve = bench.hv_curve(table, events)
    assert curve[:2] == [0.0, 0.0] and 0 < curve[2] < curve[3] <= 1.0
    assert bench.compute_to_reach(curve, curve[3]) == 4 and math.isinf(bench.compute_to_reach(curve, 1.01))

    out = tmp_path / "out"
    bench.main(["--table", str(path), "--seeds", "1", "--strategies", "default,random", "--out", str(out)])
    report = json.loads((out / "table.search_efficiency.json").read_text())
    assert {(r["strategy"], r["seeded"]) for r in report["summary"]} == {
        ("default", True), ("default", False), ("random", True), ("random", False)}
    for run in report["runs"]:
        trials = {e[0] for e in run["events"]}
        finals = [e for e in run["events"] if e[1] == 3]
        assert len({tuple(e[:2]) for e in run["events"]}) == len(run["events"])  # no epoch twice
        assert len(finals) <= 16 and len(trials) <= 16  # never a sub-network trained twice
    random_seeded = next(r for r in report["summary"] if r["strategy"] == "random" and r["seeded"])
    assert random_seeded["hv_at_budget"] == pytest.approx(1.0)  # budget = the whole table: the whole front is found
    assert (out / "table.search_efficiency.png").stat().st_size > 0
