"""bench/default_runs.py: the summary of several default runs, from what they wrote."""

import json

from conftest import load_bench


def _point(trial, params, val, test, preset=None, full_ok=False):
    return {"trial_id": trial, "trainable_params": params, "fraction": params / 1000, "metric": val,
            "test_metric": test, "selection": preset or f"mix {trial}", "preset": preset,
            "not_worse_than_full": full_ok}


def test_it_counts_the_search_s_own_points_on_the_test_front(tmp_path, capsys):
    runs = []
    for seed, searched_test in ((0, 0.80), (1, 0.55)):
        folder = tmp_path / f"run{seed}"
        folder.mkdir()
        references = [_point("h", 10, 0.6, 0.60, "head"), _point("f", 1000, 0.8, 0.82, "full", True)]
        points = [references[0], _point("s", 100, 0.75, searched_test, full_ok=True), references[1]]
        (folder / "frontier.json").write_text(json.dumps({"metric": "accuracy", "test": {"rows": 100},
                                                          "references": references, "points": points}))
        runs.append(str(folder))
    out = tmp_path / "summary.json"
    assert load_bench("default_runs").main([*runs, "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    # seed 0: the searched point (100 params, 0.80 on test) is between head and full on the test front;
    # seed 1: at 0.55 on test, head only (10 params, 0.60) dominates it
    assert [r["searched_on_validation_front"] for r in summary["searched_points"]] == [1, 1]
    assert [r["searched_on_test_front"] for r in summary["searched_points"]] == [1, 0]
    assert summary["cheapest_within_noise"][0]["trainable_params"] == 100
    assert "on the validation front / on the test split's front" in capsys.readouterr().out


def test_real_runs_keeps_the_seeds_of_earlier_sittings(tmp_path):
    """bench/real_runs.py writes each sitting's rows into its results file without losing another sitting's
    seeds; a seed run again replaces its rows."""
    write = load_bench("real_runs").write_results
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"command": "first", "runs": [{"strategy": "presets", "seed": 0, "v": 1},
                                                             {"strategy": "default", "seed": 0, "v": 1}]}))
    write(out, "second", [{"strategy": "presets", "seed": 1, "v": 2}, {"strategy": "default", "seed": 0, "v": 3}])
    saved = json.loads(out.read_text())
    assert saved["commands"] == ["first", "second"]
    assert [(r["strategy"], r["seed"], r["v"]) for r in saved["runs"]] == [
        ("presets", 0, 1), ("default", 0, 3), ("presets", 1, 2)]
