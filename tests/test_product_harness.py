"""The search-efficiency harness on a product-space table: search.run's own space (three-valued switches, the
learning-rate scale), its start, gap and presets, answered by a surrogate that takes the scale as an input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_bench

from spaces import SpaceConfig, SubnetworkSpace, UsageError, load_taxonomy, reference_lr, refs_from_switches

REPO = Path(__file__).resolve().parent.parent
BEST_SCALE = 2.0  # the synthetic truth's best learning-rate scale, inside the default range [1, 3]


def _truth(params: int, scale: float, total: int) -> float:
    """More parameters help (diminishing); the scale costs a quadratic in log10 away from BEST_SCALE."""
    size = math.log10(params) / math.log10(total)
    return 0.55 + 0.3 * size - 0.4 * (math.log10(scale) - math.log10(BEST_SCALE)) ** 2


@pytest.fixture(scope="module")
def bench():
    return load_bench("search_efficiency")


@pytest.fixture(scope="module")
def product_table(tiny_bert_3_layers, tmp_path_factory):
    """A table in record_table.py's product format over the tiny model's module-granular space: the presets at
    scales 0.3, 1, 3 and 10, and 60 selections of record_table's own sample (one scale each), 6 again at seed 1."""
    record = load_bench("record_table")
    taxonomy = load_taxonomy(tiny_bert_3_layers, 2, "cls")
    space = SubnetworkSpace(taxonomy, SpaceConfig())
    plan = [({k: v for k, v in p.items() if k != "lr_scale"}, scale, 0)
            for p in space.seed_points().values() for scale in (0.3, 1.0, 3.0, 10.0)]
    plan += record.product_sample(space, 60, (0.3, 10), repeats=6)
    rng = np.random.default_rng(0)
    rows = []
    for values, scale, seed in plan:
        units = refs_from_switches(space.switch_units, values)
        params = taxonomy.count(units)
        on = [n + ("" if v == "all" else f":{v}") for n, v in values.items() if v != "off"]
        final = _truth(params, scale, taxonomy.total_params) + rng.normal(0, 0.003)
        for epoch in (1, 2, 3):
            rows.append({"selection": " + ".join(on) or "head only", "switches": on, "units": units,
                         "trainable_params": params, "lr": scale * reference_lr(params, taxonomy.total_params),
                         "epoch": epoch, "metric": final - 0.03 * (3 - epoch), "metric_name": "accuracy",
                         "eval_loss": 1.5 - final + 0.05 * (3 - epoch), "epoch_seconds": 1.0 + math.log10(params),
                         "train_rows": 4096, "seed": seed, "lr_scale": scale})
    path = tmp_path_factory.mktemp("product") / "tiny-product.parquet"
    meta = {"majority_metric": "0.5", "total_params": str(taxonomy.total_params), "model": tiny_bert_3_layers,
            "num_labels": "2", "pooling": "cls", "granularity": "module"}
    pq.write_table(pa.Table.from_pylist(rows).replace_schema_metadata(meta), path)
    return path


def test_a_product_table_is_search_run_s_space_answered_by_a_scaled_surrogate(bench, product_table):
    table = bench.open_table(str(product_table))
    assert isinstance(table, bench.ProductTable)
    assert table.space.size() == math.prod(len(v) for v in table.space.values_of.values()) > 3 ** 8
    # a proposal of the product's own space maps to its key and back, parameters included
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = table.make_space(label_presets=False)
    for _ in range(20):
        config = space(study.ask())
        key = table.key_of(config)
        entry = table.entry(key)
        assert entry["params"] == config["trainable_params"] and sorted(entry["units"]) == sorted(config["units"])
        assert 1.0 <= key[1] <= 3.0 and key[1] == float(f"{config['lr_scale']:.4g}")
        assert "@ lr x" in table.describe(key) and config["preset"] is None  # unseeded: nothing labelled
    # the surrogate learned the scale: a mid-sized sub-network is better at the best scale than far from it
    names = frozenset({"attn.norm", "value:bias"})
    at = {scale: table.final((names, scale))[0] for scale in (0.3, BEST_SCALE, 10.0)}
    assert at[BEST_SCALE] > at[0.3] + 0.05 and at[BEST_SCALE] > at[10.0] + 0.05


def test_the_scaled_surrogate_is_validated_on_held_out_sub_networks(product_table):
    surrogate = load_bench("surrogate")
    switches, epochs, by_seed, scaled = surrogate.read_curves(str(product_table))
    assert scaled and sorted(by_seed) == [0, 1] and all(isinstance(k, tuple) for k in by_seed[0])
    check = surrogate.validate(switches, epochs, by_seed[0], folds=4, trees=100, scaled=True)
    assert check["trainings"] > check["sub_networks"]  # the presets at four scales each, held out together
    assert check["spearman"] > 0.8 and check["mae"] < 0.05
    noise = surrogate.seed_noise(by_seed, epochs)
    assert noise["repeated"] == 6 and noise["std"] < 0.02


def test_the_simulated_product_search_proposes_from_search_run_s_space_and_rate_range(bench, product_table,
                                                                                      monkeypatch):
    table = bench.open_table(str(product_table))
    budget = table.exhaustive_seconds / 2

    def scales(run):
        return [float(e["selection"].rsplit("x", 1)[1]) for e in run["events"] if e["epoch"] == 1]

    seeded = bench.run_once(table, "default", bench.STRATEGIES["default"], 0, True, 2, budget)
    presets = {table.describe(table.key_of(table.config_of(values))) for values in table.space.seed_points().values()}
    first = [e["selection"] for e in seeded["events"] if e["epoch"] == 1][: len(presets)]
    assert set(first) == presets and seeded["labelled"] >= len(presets)  # the presets first, at scale 1
    searched = scales(seeded)[len(presets):]
    assert searched and all(1.0 <= s <= 3.0 for s in searched) and len(set(searched)) > 3  # the default range
    fixed = bench.run_once(table, "default-lr1", bench.STRATEGIES["default-lr1"], 0, False, 2, budget)
    assert set(scales(fixed)) == {1.0}  # --lr-scale-range 1,1: the size rule alone
    # the start is the product's: SubnetworkSpace.spread_points, which search.run's start calls
    unseeded = bench.run_once(table, "default", bench.STRATEGIES["default"], 0, False, 2, budget)
    spread = [e["selection"] for e in unseeded["events"] if e["epoch"] == 1][:2]
    everything = table.config_of({**dict.fromkeys(table.space.switch_units, "all"), "lr_scale": 1.0})
    assert spread == ["head only @ lr x1", table.describe(table.key_of(everything))]
    monkeypatch.setattr(SubnetworkSpace, "spread_points", lambda self, k, seed=0: [])
    changed = bench.run_once(table, "default", bench.STRATEGIES["default"], 0, False, 2, budget)
    assert [e["selection"] for e in changed["events"] if e["epoch"] == 1][:2] != spread


def test_moasha_searches_the_product_space_through_syne_tune(bench, product_table):
    table = bench.open_table(str(product_table))
    run = bench.run_once(table, "moasha", bench.STRATEGIES["moasha"], 0, False, 2, table.exhaustive_seconds / 2)
    firsts = [e["selection"] for e in run["events"] if e["epoch"] == 1]
    assert len(firsts) > 8 and any(":bias" in s for s in firsts)  # three-valued switches
    assert all(1.0 <= float(s.rsplit("x", 1)[1]) <= 3.0 for s in firsts)  # the product's default rate range


@pytest.mark.slow
def test_the_benchmark_runs_on_a_product_table_and_refuses_what_it_cannot_answer(bench, product_table, tmp_path):
    out = tmp_path / "out"
    assert bench.main(["--table", str(product_table), "--seeds", "2", "--strategies", "presets,default,random",
                       "--workers", "2", "--out", str(out)]) == 0
    report = json.loads((out / "tiny-product.search_efficiency.json").read_text())
    assert {r["strategy"] for r in report["summary"]} == {"presets", "default", "random"}
    table = (out / "tiny-product.search_efficiency.md").read_text()
    assert all(f"| {name} |" in table for name in ("presets", "default", "random"))  # a row per strategy
    # a plain table cannot answer a strategy with its own rate range
    plain = tmp_path / "plain.parquet"
    pq.write_table(pq.read_table(product_table).drop(["lr_scale"]), plain)
    with pytest.raises(UsageError, match="needs a product-space table"):
        bench.run_once(bench.open_table(str(plain)), "default-lr1", bench.STRATEGIES["default-lr1"], 0, False, 2, 10)
    # a product table without the metadata to rebuild its space: one line, exit 2
    bare = tmp_path / "bare.parquet"
    table = pq.read_table(product_table)
    meta = {k: v for k, v in table.schema.metadata.items() if k != b"num_labels"}
    pq.write_table(table.replace_schema_metadata(meta), bare)
    done = subprocess.run([sys.executable, str(REPO / "bench" / "search_efficiency.py"), "--table", str(bare),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "num_labels" in done.stderr


def test_the_front_lists_a_sub_network_once_however_many_scales_found_it(bench, product_table):
    table = bench.open_table(str(product_table))
    runs = [bench.run_once(table, "default", bench.STRATEGIES["default"], seed, False, 2, table.exhaustive_seconds / 2)
            for seed in (0, 1)]
    shares = bench.front_shares(table, runs)
    listed = [(p["selection"].rsplit(" @ lr x", 1)[0], p["metric"], p["params"]) for p in shares]
    assert len(listed) == len(set(listed)) and all(p["ties"] >= 0 for p in shares)
    head = next(p for p in shares if p["selection"].startswith("head only"))
    assert head["share_left_without"] < 1.0  # without head only at every scale the front loses its cheap end
