"""bench/driver_scale.py: the driver's cost per decision, from the product's searcher and scheduler."""

import json
import math

import pytest
from conftest import load_bench
from test_replay import _table


@pytest.fixture(scope="module")
def scale():
    return load_bench("driver_scale")


def test_calls_group_into_proposals_and_results(scale):
    timings = [  # (component, call, trials started, results so far, CPU seconds)
        ("searcher", "suggest", 0, 0, 0.010), ("scheduler", "on_trial_add", 1, 0, 0.001),
        ("searcher", "suggest", 1, 0, 0.012), ("scheduler", "on_trial_add", 2, 0, 0.001),
        ("searcher", "on_trial_result", 2, 1, 0.002), ("scheduler", "on_trial_result", 2, 1, 0.003),
        ("scheduler", "on_trial_complete", 2, 1, 0.001), ("searcher", "on_trial_complete", 2, 1, 0.004),
        ("searcher", "suggest", 2, 1, 0.020), ("scheduler", "on_trial_add", 3, 1, 0.001),
        ("searcher", "on_trial_result", 3, 2, 0.002), ("scheduler", "on_trial_result", 3, 2, 0.001),
    ]
    made = scale.decisions(timings)
    assert [d["kind"] for d in made] == ["proposal", "proposal", "result", "proposal", "result"]
    assert [round(d["seconds"], 3) for d in made] == [0.011, 0.013, 0.010, 0.021, 0.003]
    assert made[2]["searcher"] == pytest.approx(0.006) and made[2]["scheduler"] == pytest.approx(0.004)
    # a decision counts the trials started when it was made (a proposal: those before the one it proposes)
    rows = scale.by_marks(made, [1, 3])
    assert [r["decisions"] for r in rows] == [2, 3]
    assert rows[0]["proposal"]["count"] == 2 and rows[0]["result"] is None
    assert rows[1]["proposal"]["median_ms"] == pytest.approx(21.0)
    assert rows[1]["result"]["count"] == 2 and rows[1]["result"]["median_ms"] == pytest.approx(6.5)


def test_it_drives_the_product_s_searcher_and_scheduler_with_their_files(scale, tmp_path):
    harness = load_bench("search_efficiency")
    table = harness.Table(str(_table(tmp_path / "t.parquet")), surrogate=True)
    timings = []
    folder = tmp_path / "run"
    folder.mkdir()
    run = harness.run_once(table, "default", harness.STRATEGIES["default"], 0, True, 4, math.inf,
                           max_trials=10, timings=timings, run_dir=folder)
    assert len({e["trial"] for e in run["events"]}) == 10  # the cap on trials
    from search import OPTUNA_JOURNAL_FILE, SCHEDULER_STATE_FILE

    assert (folder / OPTUNA_JOURNAL_FILE).stat().st_size > 0 and (folder / SCHEDULER_STATE_FILE).is_file()
    calls = {(component, call) for component, call, *_ in timings}
    assert {("searcher", "suggest"), ("searcher", "on_trial_result"), ("scheduler", "on_trial_result"),
            ("scheduler", "on_trial_add")} <= calls
    assert sum(t[-1] for t in timings) == pytest.approx(run["driver_seconds"])


def test_the_benchmark_writes_its_windows(scale, tmp_path, capsys):
    out = tmp_path / "scale.json"
    table = _table(tmp_path / "t.parquet")
    assert scale.main(["--table", str(table), "--trials", "12", "--workers", "4", "--marks", "4,12",
                       "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [(w["trials_from"], w["trials_to"]) for w in saved["windows"]] == [(1, 4), (5, 12)]
    assert saved["trials"] == 12 and saved["results"] >= 12 and saved["driver_cpu_seconds"] > 0
    assert all(0 <= w["searcher_share"] <= 1 for w in saved["windows"])
    assert sum(w["proposal"]["count"] for w in saved["windows"]) >= 12
    assert "growth exponents" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(scale, tmp_path, capsys):
    table = str(_table(tmp_path / "t.parquet"))
    for argv, message in ((["--table", table, "--trials", "0"], "--trials and --workers must be at least 1"),
                          (["--table", table, "--marks", "ten"], "--marks takes trial counts"),
                          (["--table", str(tmp_path / "none.parquet")], "table not found"),
                          (["--table", table, "--strategy", "presets"], "--strategy must be a searching strategy")):
        assert scale.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, argv


def test_the_ray_scale_table_covers_the_space_and_bad_input_is_refused(tiny_bert, tmp_path, capsys):
    import pyarrow.parquet as pq

    from spaces import SpaceConfig, SubnetworkSpace, load_taxonomy, refs_from_switches
    from trainables import ReplayTable

    ray_scale = load_bench("ray_scale")
    taxonomy = load_taxonomy(tiny_bert, 2)
    space = SubnetworkSpace(taxonomy, SpaceConfig(values=("off", "bias", "all")))  # the table's space, as ray_scale's
    made = ray_scale.synthetic_table(space, taxonomy, tmp_path / "t.parquet", 0.5)
    assert made == space.size() and pq.read_metadata(tmp_path / "t.parquet").num_rows == 3 * made
    table = ReplayTable.from_parquet(tmp_path / "t.parquet")
    every_on = refs_from_switches(space.switch_units, {n: "all" for n in space.switch_units})
    curve = table.curve(every_on)
    assert [seconds for _, seconds, _ in curve] == [0.5, 0.5, 0.5] and curve[2][0] > curve[0][0]
    for argv, message in ((["--concurrency", "0"], "--concurrency takes positive whole numbers"),
                          (["--trials", "many"], "--trials takes whole numbers"),
                          (["--arms", "product,other"], "--arms takes product, peer"),
                          (["--epoch-seconds", "0"], "--epoch-seconds must be positive")):
        assert ray_scale.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, argv
