"""The surrogate benchmark (bench/surrogate.py) on a synthetic layer-granular table with a known truth,
and the search-efficiency harness replaying searches on it."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_bench

from spaces import UsageError

REPO = Path(__file__).resolve().parent.parent
SWITCHES = [f"{layer}.{kind}" for layer in range(3) for kind in ("value", "norms")]
GAIN = {"value": 0.05, "norms": 0.03}
PARAMS = {"value": 10_000, "norms": 100}


def _truth(on) -> float:
    """Each switch adds its gain, less in lower layers; diminishing returns."""
    total = sum(GAIN[s.split(".")[1]] * (1 + int(s.split(".")[0])) / 3 for s in on)
    return 0.55 + 0.3 * (1 - np.exp(-3 * total))


def _loss(final: float, epoch: int) -> float:
    return 1.5 - final + 0.1 * (3 - epoch)


def _layer_table(path: Path, keep: int = 44, noise: float = 0.002) -> Path:
    """Head, every switch alone, everything, and `keep` in all of the 64; 10 of them at seeds 1 and 2."""
    everything = [tuple(s for s, b in zip(SWITCHES, bits) if b) for bits in itertools.product((0, 1), repeat=6)]
    first = [(), tuple(SWITCHES), *((s,) for s in SWITCHES)]
    rng = np.random.default_rng(0)
    rest = [everything[i] for i in rng.permutation(len(everything)) if everything[i] not in first]
    chosen = first + rest[: keep - len(first)]
    rows = []
    for seed in (0, 1, 2):
        for on in chosen if seed == 0 else chosen[:10]:
            params = 50 + sum(PARAMS[s.split(".")[1]] for s in on)
            final = _truth(on) + rng.normal(0, noise)
            for epoch in (1, 2, 3):
                rows.append({"selection": " + ".join(on) or "head only", "switches": list(on),
                             "units": [f"{s}.u" for s in on], "trainable_params": params, "lr": 1e-3,
                             "epoch": epoch, "metric": final - 0.02 * (3 - epoch), "metric_name": "accuracy",
                             "eval_loss": _loss(final, epoch),
                             "epoch_seconds": 1.0 + params / 10_000, "seed": seed})
    pq.write_table(pa.Table.from_pylist(rows).replace_schema_metadata(
        {"majority_metric": "0.5", "total_params": "1000000"}), path)
    return path


@pytest.fixture(scope="module")
def surrogate():
    return load_bench("surrogate")


@pytest.fixture(scope="module")
def bench():
    return load_bench("search_efficiency")


def test_the_surrogate_ranks_held_out_sub_networks_and_knows_the_seed_noise(surrogate, tmp_path):
    switches, epochs, by_seed, _ = surrogate.read_curves(str(_layer_table(tmp_path / "t.parquet")))
    assert switches == SWITCHES and epochs == 3 and sorted(by_seed) == [0, 1, 2] and len(by_seed[0]) == 44
    check = surrogate.validate(switches, epochs, by_seed[0], folds=4, trees=100)
    assert check["sub_networks"] == 44 and check["spearman"] > 0.8 and check["mae"] < 0.03
    noise = surrogate.seed_noise(by_seed, epochs)
    assert noise["repeated"] == 10 and 0.0005 < noise["std"] < 0.006  # the table's noise was 0.002
    # a sub-network the table does not hold: predicted near the truth, its seconds from its size
    model = surrogate.Surrogate(switches, epochs).fit(by_seed[0])
    missing = next(frozenset(c) for c in itertools.combinations(SWITCHES, 3) if frozenset(c) not in by_seed[0])
    params = 50 + sum(PARAMS[s.split(".")[1]] for s in missing)
    assert abs(model.curve(missing, params)[3][0] - _truth(missing)) < 0.05


def test_the_flat_forest_predicts_what_the_forest_does(surrogate):
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 2, (200, 6)), rng.uniform(2, 7, 200)])  # switch bits, log10 params
    y = x[:, :6] @ rng.normal(size=6) + np.sin(x[:, 6]) + rng.normal(0, 0.1, 200)
    forest = surrogate._forest(0, 50).fit(x, y)
    flat = surrogate.FlatForest(forest)
    rows = np.column_stack([rng.integers(0, 2, (40, 6)), rng.uniform(2, 7, 40)])
    assert np.allclose([flat.predict_one(r) for r in rows], forest.predict(rows), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="single-output"):
        surrogate.FlatForest(RandomForestRegressor(n_estimators=3).fit(x, np.column_stack([y, y])))


def test_searches_replay_on_the_surrogate_beyond_the_recorded_sub_networks(bench, tmp_path):
    table = bench.Table(str(_layer_table(tmp_path / "t.parquet")), surrogate=True)
    presets = table.presets()
    assert set(presets.values()) == {"head", "full", "value", "norms", "layernorm.0", "layernorm.1", "layernorm.2"}
    assert presets[frozenset(["0.value", "1.value", "2.value"])] == "value"
    run = bench.run_once(table, "random", bench.STRATEGIES["random"], 0, False, 2, 3 * table.exhaustive_seconds)
    trained = {e["selection"] for e in run["events"]}
    recorded = {table.describe(on) for on in table.recorded}
    assert trained - recorded  # sub-networks the table never recorded were answered by the surrogate
    on = next(k for k in table.entries if k not in table.recorded)
    assert table.entry(on)["params"] == 50 + sum(PARAMS[s.split(".")[1]] for s in on)  # added up exactly
    # Pareto-ASHA's tie-breaker is predicted too, not left to 1 - metric
    loss = table.entry(on)["loss"]
    assert sorted(loss) == [1, 2, 3] and all(abs(loss[e] - _loss(_truth(on), e)) < 0.05 for e in loss)
    hv, size = bench.best_known(table, [run])
    assert hv > 0 and size >= 1


def test_the_surrogate_s_answers_are_not_counted_as_the_searcher_s_driver_seconds(bench, tmp_path):
    import time

    table = bench.Table(str(_layer_table(tmp_path / "t.parquet")), surrogate=True)
    predict = table.surrogate.curve

    def slow_curve(selection, params):  # 0.1 s of CPU per answer, far more than a random proposal costs
        until = time.process_time() + 0.1
        while time.process_time() < until:
            pass
        return predict(selection, params)

    table.surrogate.curve = slow_curve
    run = bench.run_once(table, "random", bench.STRATEGIES["random"], 0, False, 2, 2 * table.exhaustive_seconds)
    assert table.lookup_seconds > 1.0  # answered at least ten sub-networks the table lacks
    assert run["driver_seconds"] < table.lookup_seconds / 2


def test_bad_input_to_the_surrogate_is_one_line_and_exit_2(tmp_path):
    path = _layer_table(tmp_path / "t.parquet")
    pq.write_table(pq.read_table(path).drop(["switches"]), tmp_path / "bad.parquet")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "surrogate.py"), str(tmp_path / "bad.parquet"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: table {tmp_path / 'bad.parquet'} lacks column(s) switches "
        "(needs switches, trainable_params, epoch, metric, epoch_seconds)"]
    done = subprocess.run([sys.executable, str(REPO / "bench" / "surrogate.py"), str(path), "--out", str(tmp_path),
                           "--folds", "3", "--trees", "50"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "t.surrogate.json").read_text())
    assert report["validation"]["spearman"] > 0.8 and report["seed_noise"]["repeated"] == 10


def test_a_table_naming_its_cost_column_is_costed_by_it(surrogate, bench, tmp_path):
    """A CPU recording's cost is its process seconds (`cost_column`), not its wall seconds; both benchmarks
    read it; a cost column with empty rows is refused in one line."""
    path = _layer_table(tmp_path / "t.parquet")
    table = pq.read_table(path)
    cpu = pa.array([2.0 * s for s in table.column("epoch_seconds").to_pylist()])
    costed = table.append_column("epoch_cpu_seconds", cpu).replace_schema_metadata(
        {**{k.decode(): v.decode() for k, v in table.schema.metadata.items()}, "cost_column": "epoch_cpu_seconds"})
    pq.write_table(costed, tmp_path / "cpu.parquet")
    _, _, by_seed, _ = surrogate.read_curves(str(tmp_path / "cpu.parquet"))
    _, _, walls, _ = surrogate.read_curves(str(path))
    assert all(by_seed[0][k]["curve"][e][1] == 2.0 * walls[0][k]["curve"][e][1] for k in walls[0] for e in (1, 2, 3))
    cpu_table, wall_table = bench.Table(str(tmp_path / "cpu.parquet")), bench.Table(str(path))
    assert cpu_table.exhaustive_seconds == pytest.approx(2.0 * wall_table.exhaustive_seconds)

    empty = costed.set_column(costed.schema.get_field_index("epoch_cpu_seconds"), "epoch_cpu_seconds",
                              pa.nulls(costed.num_rows, pa.float64()))
    pq.write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(UsageError, match="its cost column epoch_cpu_seconds is missing or has empty rows"):
        surrogate.read_curves(str(tmp_path / "empty.parquet"))


def test_two_recordings_of_the_same_trainings_are_compared(surrogate, tmp_path, capsys):
    """--against: the shared (selection, seed) trainings of another device's recording, their final metrics'
    differences and rank agreement; a table of another space is one error line."""
    path = _layer_table(tmp_path / "t.parquet")
    table = pq.read_table(path)
    shifted = table.set_column(table.schema.get_field_index("metric"), "metric",
                               pa.compute.add(table.column("metric"), 0.01))
    pq.write_table(shifted.slice(0, 60), tmp_path / "gpu.parquet")  # 20 trainings of 3 epochs
    _, epochs, mine, _ = surrogate.read_curves(str(tmp_path / "gpu.parquet"))
    _, _, theirs, _ = surrogate.read_curves(str(path))
    seen = surrogate.agreement(mine, theirs, epochs)
    assert seen["shared"] == 20 and seen["mean_difference"] == pytest.approx(0.01)
    assert seen["std_difference"] < 1e-9 and seen["spearman"] == pytest.approx(1.0)
    assert surrogate.main([str(path), "--against", str(tmp_path / "gpu.parquet"), "--out", str(tmp_path),
                           "--folds", "3", "--trees", "20"]) == 0
    assert "20 shared trainings, final metric difference mean -0.0100" in capsys.readouterr().out
    assert json.loads((tmp_path / "t.surrogate.json").read_text())["against"]["shared"] == 20

    other = table.set_column(table.schema.get_field_index("switches"), "switches",
                             pa.array([[f"x{s}" for s in row] for row in table.column("switches").to_pylist()]))
    pq.write_table(other, tmp_path / "other.parquet")
    assert surrogate.main([str(path), "--against", str(tmp_path / "other.parquet"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("is not a recording of " + str(path) + "'s space and epochs")
