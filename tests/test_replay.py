"""The replay trainable serves its table, and the search-efficiency benchmark runs on a recorded table."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_bench
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
                         "eval_loss": 1.0 - quality + 0.01 * (3 - epoch), "epoch_seconds": 0.5 * epoch,
                         "train_rows": 4096})  # 128 steps an epoch: --grace-period auto decides after epoch 1
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


@pytest.fixture(scope="module")
def bench():
    return load_bench("search_efficiency")


def test_the_table_and_its_true_front(bench, tmp_path):
    table = bench.Table(str(_table(tmp_path / "table.parquet")))
    assert len(table.entries) == 16 and table.epochs == 3 and table.switches == SWITCHES
    assert set(table.presets().values()) == {"head", "a", "b", "c", "d", "full"}
    # every switch adds quality and cost: the true front is the head alone, then a, a + b, ...
    finals = {table.describe(on): table.final(on) for on in table.entries}
    front = sorted((p, name) for name, (m, p) in finals.items()
                   if not any(m2 >= m and p2 <= p and (m2, p2) != (m, p) for m2, p2 in finals.values()))
    assert [name for _, name in front] == ["head only", "a", "a + b", "a + b + c", "a + b + c + d"]
    assert table.exhaustive_seconds == pytest.approx(16 * (0.5 + 1.0 + 1.5))


def test_the_unseeded_arm_knows_no_preset_and_protects_none(bench, tmp_path):
    table = bench.Table(str(_table(tmp_path / "table.parquet")))
    strategy = bench.STRATEGIES["default"]
    seen = {}
    for seeded in (False, True):
        run = bench.run_once(table, "default", strategy, 0, seeded, 2, table.exhaustive_seconds)
        seen[seeded] = run
    assert seen[False]["labelled"] == 0 and seen[False]["protected"] is None
    assert seen[True]["labelled"] >= len(table.presets()) and seen[True]["protected"] == bench.PRESET_KEY
    first = [e["selection"] for e in seen[True]["events"] if e["epoch"] == 1][: len(table.presets())]
    assert set(first) == {table.describe(on) for on in table.presets()}  # seeded: the presets come first


def test_a_strategy_told_the_answer_cannot_pass_as_unseeded(bench, tmp_path):
    table = bench.Table(str(_table(tmp_path / "table.parquet")))
    space = bench.TableSpace(table, label_presets=False)
    answer = [space.switch_values(frozenset(on)) for on in (["a"], ["a", "b"])]
    for seeded in (False, True):
        with pytest.raises(ValueError, match="only its arm's points"):
            bench.run_once(table, "cheat", bench.STRATEGIES["random"], 0, seeded, 2, 10.0, points=answer)
    with pytest.raises(ValueError, match="only a seeded arm"):
        bench.run_once(table, "presets", bench.STRATEGIES["presets"], 0, False, 2, 10.0)


def test_trial_seconds_add_up_and_no_sub_network_is_trained_twice(bench, tmp_path):
    table = bench.Table(str(_table(tmp_path / "table.parquet")))
    for name in ("random", "default", "presets"):
        run = bench.run_once(table, name, bench.STRATEGIES[name], 1, True, 3, table.exhaustive_seconds)
        events = run["events"]
        by_trial = {}
        for e in events:
            by_trial.setdefault(e["trial"], []).append(e)
        # each trial's epochs in order, each costing what the table recorded for that epoch
        for trial_events in by_trial.values():
            assert [e["epoch"] for e in trial_events] == list(range(1, len(trial_events) + 1))
            on = next(k for k in table.entries if table.describe(k) == trial_events[0]["selection"])
            assert [e["seconds"] for e in trial_events] == [table.entries[on]["curve"][e["epoch"]][1]
                                                             for e in trial_events]
        selections = [t[0]["selection"] for t in by_trial.values()]
        assert len(selections) == len(set(selections))  # never a sub-network trained twice
        c = bench.curve(table, events, 1.0)
        assert c["seconds"][-1] == pytest.approx(sum(e["seconds"] for e in events))
        assert c["epochs"][-1] == len(events)
        if name == "presets":
            assert set(selections) == {table.describe(on) for on in table.presets()}
            assert c["seconds"][-1] == pytest.approx(sum(s for on in table.presets()
                                                         for _, s in table.entries[on]["curve"].values()))
        else:  # the whole table's cost as budget: the search ends when every sub-network has been proposed
            assert c["seconds"][-1] <= table.exhaustive_seconds + 1.5


def test_the_simulated_search_gives_the_product_s_second_chance(bench, tmp_path):
    """Pareto-ASHA's pauses free a worker; a paused trial resumes, at its next epoch, once it ranks
    within its rung's cut; the ablation without a second chance resumes none."""
    table = bench.Table(str(_table(tmp_path / "table.parquet")))
    run = bench.run_once(table, "default", bench.STRATEGIES["default"], 1, False, 3, table.exhaustive_seconds)
    stop = bench.run_once(table, "default-stop", bench.STRATEGIES["default-stop"], 1, False, 3,
                          table.exhaustive_seconds)
    assert run["promoted"] >= 1 and stop["promoted"] == 0
    resumed = 0
    for trial in {e["trial"] for e in run["events"]}:
        times = [e["time"] for e in run["events"] if e["trial"] == trial]
        # a trial that kept its worker has one epoch right after the other (epoch e + 1 takes 0.5 * (e + 1) s)
        gaps = [later - earlier - 0.5 * (i + 2) for i, (earlier, later) in enumerate(zip(times, times[1:]))]
        resumed += any(g > 1e-9 for g in gaps)
    assert resumed == run["promoted"]


def test_the_simulated_search_starts_fills_gaps_and_promotes_through_the_product_s_code(bench, tmp_path, monkeypatch):
    """The harness has no start, gap or promotion rule of its own: changing the product's changes the simulation."""
    import spaces
    from search import ParetoASHA, ParetoOptunaSearch

    table = bench.Table(str(_table(tmp_path / "table.parquet")))

    def simulate():
        return bench.run_once(table, "default", bench.STRATEGIES["default"], 1, False, 3, table.exhaustive_seconds)

    def first_selections(run, k=5):
        return [e["selection"] for e in run["events"] if e["epoch"] == 1][:k]

    before = simulate()
    assert first_selections(before)[:2] == ["head only", "a + b + c + d"]  # the product's spread start
    assert before["promoted"] >= 1 and before["gap_proposals"] >= 1
    # the start: spaces.start_points, which search.run's prepare calls too
    monkeypatch.setattr(spaces, "start_points", lambda space, given, spread, num_samples, seed: dict(given))
    assert first_selections(simulate())[:2] != ["head only", "a + b + c + d"]
    monkeypatch.undo()
    # promotion: ParetoASHA.promote, which the scheduler's choose_trial_to_run calls in a real search
    monkeypatch.setattr(ParetoASHA, "promote", lambda self, paused: None)
    assert simulate()["promoted"] == 0
    monkeypatch.undo()
    # gap filling: the searcher's own widest-gap rule
    monkeypatch.setattr(ParetoOptunaSearch, "_widest_gap", lambda self: None)
    assert simulate()["gap_proposals"] == 0
    monkeypatch.undo()
    assert simulate()["events"] == before["events"]  # and the simulation is deterministic


def test_the_benchmark_writes_its_results_and_computes_its_quartiles(bench, tmp_path):
    path = _table(tmp_path / "table.parquet")
    out = tmp_path / "out"
    assert bench.main(["--table", str(path), "--seeds", "3", "--strategies", "default,random,presets",
                       "--workers", "2", "--out", str(out)]) == 0
    report = json.loads((out / "table.search_efficiency.json").read_text())
    assert {(r["strategy"], r["seeded"]) for r in report["summary"]} == {
        ("default", True), ("default", False), ("random", True), ("random", False), ("presets", True)}
    for row in report["summary"]:
        low, mid, high = row["seconds_to_95"]
        assert low <= mid <= high and row["seeds"] == 3
        runs = [r for r in report["runs"] if r["strategy"] == row["strategy"] and r["seeded"] == row["seeded"]]
        reached = []
        for r in runs:
            events = [{"trial": t, "epoch": e, "metric": m, "params": p, "seconds": s}
                      for t, e, m, p, s in r["events"]]
            reached.append(bench.to_reach(bench.curve(bench.Table(str(path)), events, report["best_known_hv"]),
                                          "seconds"))
        assert sorted(reached)[1] == mid  # the median of 3 seeds, recomputed from the stored events
    # against the presets alone at the compute they spent, recomputed from the stored events
    presets = [r for r in report["runs"] if r["strategy"] == "presets"]
    spent = sorted(sum(e[4] for e in r["events"]) for r in presets)[1]
    assert report["presets_only"]["seconds"] == pytest.approx(spent)
    for row in report["summary"]:
        runs = [r for r in report["runs"] if r["strategy"] == row["strategy"] and r["seeded"] == row["seeded"]]
        at = []
        for r in runs:
            events = [{"trial": t, "epoch": e, "metric": m, "params": p, "seconds": s}
                      for t, e, m, p, s in r["events"]]
            at.append(bench.hv_at(bench.curve(bench.Table(str(path)), events, report["best_known_hv"]), spent))
        assert row["hv_at_presets_seconds"] == pytest.approx(sorted(at)[1])
        assert row["above_presets_at_their_seconds"] == sum(h > report["presets_only"]["hv"] + 1e-12 for h in at)
    random = next(r for r in report["summary"] if r["strategy"] == "random" and not r["seeded"])
    assert random["hv_at_end"] == pytest.approx(1.0)  # budget = the whole table: the whole front is found
    assert "| default | unseeded |" in (out / "table.search_efficiency.md").read_text()  # a row of the table
    assert (out / "table.search_efficiency.png").stat().st_size > 0


def test_searches_run_in_parallel_jobs_give_the_same_results(bench, tmp_path):
    """--jobs: each search in its own process, logged as it ends; the same events as one after another."""
    path = _table(tmp_path / "table.parquet")
    common = ["--table", str(path), "--seeds", "2", "--strategies", "default,random", "--arms", "unseeded",
              "--workers", "2"]
    assert bench.main([*common, "--out", str(tmp_path / "one")]) == 0
    assert bench.main([*common, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    one, two = (json.loads((tmp_path / d / "table.search_efficiency.json").read_text())["runs"] for d in ("one", "two"))
    assert [(r["strategy"], r["seed"], r["events"]) for r in one] == [(r["strategy"], r["seed"], r["events"])
                                                                      for r in two]
    assert len((tmp_path / "two" / "table.search_efficiency.runs.jsonl").read_text().splitlines()) == 4


def test_a_search_logged_by_other_product_code_is_searched_again(bench, tmp_path, monkeypatch, capsys):
    """The log is reused only for searches made by the same code of search/ and spaces/ a search runs through."""
    path = _table(tmp_path / "table.parquet")
    common = ["--table", str(path), "--seeds", "1", "--strategies", "random", "--arms", "unseeded",
              "--out", str(tmp_path)]
    log = tmp_path / "table.search_efficiency.runs.jsonl"
    assert bench.main(common) == 0
    first = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["code"] for r in first] == [bench.code_fingerprint()]
    assert bench.main(common) == 0  # the same code: reused, nothing searched
    assert len(log.read_text().splitlines()) == 1
    capsys.readouterr()
    monkeypatch.setattr(bench, "code_fingerprint", lambda: "changed")
    assert bench.main(common) == 0
    assert "1 logged search(es) were made by other code" in capsys.readouterr().out
    assert [json.loads(line)["code"] for line in log.read_text().splitlines()] == [first[0]["code"], "changed"]
    monkeypatch.undo()
    # A search logged before fingerprints is reused, and said to be.
    log.write_text(json.dumps({k: v for k, v in first[0].items() if k != "code"}) + "\n")
    assert bench.main(common) == 0
    assert "1 logged search(es) predate code fingerprints" in capsys.readouterr().out
    assert len(log.read_text().splitlines()) == 1
    # The fingerprint follows the files' contents.
    root = tmp_path / "copy"
    for name in bench.SEARCH_CODE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((REPO / name).read_bytes())
    assert bench.code_fingerprint(root) == bench.code_fingerprint()
    scheduler = Path("search") / "steer" / "pareto_asha.py"
    (root / scheduler).write_text((REPO / scheduler).read_text() + "\n# x\n")
    assert bench.code_fingerprint(root) != bench.code_fingerprint()


def test_bad_input_to_the_benchmark_is_one_line_and_exit_2(bench, tmp_path, capsys):
    path = _table(tmp_path / "table.parquet")
    pq.write_table(pq.read_table(path).drop(["epoch_seconds"]), tmp_path / "bad.parquet")
    for args, message in ((["--table", str(tmp_path / "bad.parquet")], "lacks column(s) epoch_seconds"),
                          (["--table", str(path), "--strategies", "default,magic"], "unknown strategy 'magic'"),
                          (["--table", str(tmp_path / "none.parquet")], "cannot read table"),
                          (["--table", str(path), "--seeds-for", "gp"], "--seeds-for takes NAME=K"),
                          (["--table", str(path), "--jobs", "0"], "--jobs must be at least 1")):
        assert bench.main([*args, "--out", str(tmp_path / "o")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    done = subprocess.run([sys.executable, str(REPO / "bench" / "search_efficiency.py"), "--table",
                           str(tmp_path / "bad.parquet")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1  # the script itself, once


def test_a_replayed_trial_imports_neither_torch_nor_transformers(tmp_path):
    """A Ray worker that only replays stays small (bench/ray_scale.py runs 64 at once): trainables loads its
    names on first use, and the replay trainable needs neither torch nor transformers."""
    import trainables

    assert {"ReplayTable", "replay"} <= set(trainables.__all__)
    table = _table(tmp_path / "t.parquet")
    code = ("import sys, trainables\n"
            f"t = trainables.ReplayTable.from_parquet({str(table)!r})\n"
            "assert t.curve(['a.unit']) and callable(trainables.replay)\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_syne_tune_s_moasha_searches_through_its_own_api(bench, tmp_path):
    """The MOASHA peer: Syne Tune's scheduler proposes and stops; the harness trains what it proposes (a repeat
    too, as its users get), and MOASHA has no seeded arm (it takes no points)."""
    table = bench.Table(str(_table(tmp_path / "t.parquet")))
    run = bench.run_once(table, "moasha", bench.STRATEGIES["moasha"], 0, False, 2, table.exhaustive_seconds)
    finals = {}
    for e in run["events"]:
        finals[e["trial"]] = max(finals.get(e["trial"], 0), e["epoch"])
    assert len(finals) > 8 and sum(e["seconds"] for e in run["events"]) >= table.exhaustive_seconds
    assert set(finals.values()) >= {1, 3}  # some stopped at the first rung, some trained to the full budget
    again = bench.run_once(table, "moasha", bench.STRATEGIES["moasha"], 0, False, 2, table.exhaustive_seconds)
    assert again["events"] == run["events"]  # seeded: the same search twice
    with pytest.raises(ValueError, match="has only an unseeded arm"):
        bench.run_once(table, "moasha", bench.STRATEGIES["moasha"], 0, True, 2, table.exhaustive_seconds)
