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



def _scored_run(folder, points, logits, labels):
    """A finished run as default_runs.py reads it: its front, and the test outputs of every point on it."""
    import numpy as np

    folder.mkdir()
    (folder / "frontier.json").write_text(json.dumps({
        "metric": "accuracy", "test": {"rows": len(labels)}, "references": [p for p in points if p["preset"]],
        "points": points, "reference_point": {"metric": 0.5, "log10_params": 4.0}}))
    np.savez(folder / "test_outputs.npz", labels=np.asarray(labels), **{k: np.asarray(v) for k, v in logits.items()})


def test_default_runs_pairs_each_run_s_test_hypervolume_with_its_partner_s(tmp_path, capsys):
    """--against: one run per run, the difference of their returned fronts' test hypervolumes, paired."""
    labels = [0, 1] * 50
    right = [[1.0, 0.0] if y == 0 else [0.0, 1.0] for y in labels]
    half = [[1.0, 0.0]] * 50 + right[50:]  # right on the last 50 rows only
    head, full = _point("h", 10, 0.6, 0.75, "head"), _point("f", 1000, 0.8, 0.9, "full", True)
    # with: a cheap point that is always right; without: the same front minus it
    _scored_run(tmp_path / "with", [head, _point("s", 100, 0.8, 1.0, full_ok=True), full],
                {"h": half, "s": right, "f": right}, labels)
    _scored_run(tmp_path / "without", [head, full], {"h": half, "f": right}, labels)
    out = tmp_path / "summary.json"
    bench = load_bench("default_runs")
    assert bench.main([str(tmp_path / "with"), "--against", str(tmp_path / "without"), "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["test_hypervolume"]
    assert row["against"] == "without" and row["test_hypervolume"] > 0
    assert row["minus"]["difference"] > 0 and row["minus"]["low"] > 0  # always right at a tenth of the params
    assert "minus without" in capsys.readouterr().out
    assert bench.main([str(tmp_path / "with"), "--against", str(tmp_path / "without"), str(tmp_path / "with")]) == 2
    assert capsys.readouterr().err.startswith("error: --against takes one run per run")

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


def _row(strategy, seed, hv, difference=None, low=None, pick=None):
    row = {"strategy": strategy, "seed": seed, "trials": 18, "trial_seconds": 400.0, "test_hypervolume": hv,
           "low": hv - 0.1, "high": hv + 0.1, "front_points": 4, "cheapest_within_noise_of_full": pick}
    if difference is not None:
        row["minus_presets"] = {"difference": difference, "low": low, "high": difference + 0.02,
                                "above_in_resamples": 0.9 if difference > 0 else 0.1}
    return row


def test_real_runs_report_counts_the_seeds_above_the_presets_and_random(tmp_path, capsys):
    """`bench/real_runs.py --report` prints a results file as a table and counts, per strategy, the seeds whose
    test front is above the presets' (and beyond the paired interval), and the default against random's median."""
    bench = load_bench("real_runs")
    out = tmp_path / "r.json"
    pick = {"selection": "x", "trainable_params": 18434, "test_metric": 0.758, "preset": None}
    out.write_text(json.dumps({"commands": ["c"], "runs": [
        _row("presets", 0, 0.85, pick={**pick, "preset": "attn.out", "trainable_params": 887810}),
        _row("default", 0, 0.89, 0.034, 0.005, pick), _row("random", 0, 0.25, -0.6, -0.7),
        _row("presets", 1, 0.30), _row("default", 1, 0.29, -0.01, -0.03), _row("random", 1, 0.30, -0.6, -0.7),
        _row("presets", 2, 0.88), _row("default", 2, 0.89, 0.01, -0.01), _row("random", 2, 0.95, 0.07, 0.01)]}))
    assert bench.main(["--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| default, 0 | 18 | 400 | 0.890 (0.790-0.990) | +0.034 (+0.005 to +0.054; above in 90% of resamples)" \
        in printed
    assert "a searched mix, 18,434 params (0.758)" in printed and "`attn.out`, 887,810 params" in printed
    assert "- default: above the presets' test front in 2 of 3 seeds (1 beyond the paired interval)" in printed
    assert "- random: above the presets' test front in 1 of 3 seeds (1 beyond the paired interval)" in printed
    assert "- default above random search's median test hypervolume (0.300) in 2 of 3 seeds" in printed


def test_real_runs_report_of_a_file_that_is_not_results_is_one_error_line(tmp_path, capsys):
    bench = load_bench("real_runs")
    (tmp_path / "x.json").write_text("[1, 2]")
    assert bench.main(["--report", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'x.json'} is not a results file of bench/real_runs.py"]
    assert bench.main(["--report", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "rows.json").write_text(json.dumps({"runs": [{"strategy": "presets", "seed": 0}]}))
    assert bench.main(["--report", str(tmp_path / "rows.json")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"error: {tmp_path / 'rows.json'} is not a results file of bench/real_runs.py"


def test_real_runs_sorts_the_scored_tickets_by_kind_and_says_where_lora_sits(tmp_path, capsys):
    """Every ticket a run scored on test rows is kept with its kind; the report's table gives, per size band,
    each kind's best test score (* within noise of full fine-tuning)."""
    bench = load_bench("real_runs")
    kind = bench.ticket_kind
    assert kind([]) == "head only"
    assert kind(["0.attn.norm", "1.ffn.norm:bias", "2.value:bias", "embeddings.norm"]) == "norms and biases"
    assert kind(["0.query:lora8", "0.value:bias", "1.attn.norm"]) == "LoRA"
    assert kind(["0.query:lora2", "3.ffn.out"]) == "LoRA and whole modules"
    assert kind(["0.attn.out", "1.attn.out"]) == kind(["embeddings"]) == "whole modules"
    run = tmp_path / "run"
    run.mkdir()
    references = [{**_point("h", 770, 0.6, 0.70, "head"), "units": []},
                  {**_point("n", 10754, 0.7, 0.75, "layernorm"), "units": ["0.attn.norm", "0.ffn.norm"]},
                  {**_point("q", 74498, 0.71, 0.754, "lora.qv", True), "units": ["0.query:lora8", "0.value:lora8"]},
                  {**_point("a", 887810, 0.72, 0.768, "attn.out", True), "units": ["0.attn.out"]},
                  {**_point("f", 22566146, 0.73, 0.775, "full", True), "units": ["0.query"]}]
    mix = {**_point("s", 27266, 0.75, 0.780, full_ok=True), "units": ["1.attn.out:lora2", "0.value:bias"]}
    unscored = {**_point("u", 5000, 0.74, None), "units": ["1.ffn.norm"]}
    (run / "frontier.json").write_text(json.dumps({"references": references,
                                                    "points": [references[0], mix, unscored, references[4]]}))
    tickets = bench.scored_tickets(run)
    assert [(t["trial_id"], t["kind"], t["on_validation_front"]) for t in tickets] == [
        ("h", "head only", True), ("n", "norms and biases", False), ("s", "LoRA", True), ("q", "LoRA", False),
        ("a", "whole modules", False), ("f", "whole modules", True)]
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"commands": ["c"], "runs": [_row("presets", 0, 0.85),
                                                           {**_row("lora", 0, 0.91, 0.05, 0.01), "tickets": tickets}]}))
    assert bench.main(["--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| parameters | head only | norms and biases | LoRA | whole modules |" in printed
    assert "| 0-30K | 0.700 (head, 770) | 0.750 (layernorm, 10,754) | 0.780* (searched, 27,266) |  |" in printed
    assert "| 30K-300K |  |  | 0.754* (lora.qv, 74,498) |  |" in printed
    assert "| over 5M |  |  |  | 0.775* (full, 22,566,146) |" in printed


def test_real_runs_weighs_lora_against_the_rest_per_size_band_over_seeds():
    """Per seed and size band, the best LoRA ticket (the `lora` search's) against the best ticket without LoRA
    that either search scored; bands where one side has none show a dash and are not counted."""
    bench = load_bench("real_runs")

    def ticket(params, test, kind, full_ok=False):
        return {"trial_id": f"{kind}{params}", "kind": kind, "preset": None, "trainable_params": params,
                "validation_metric": 0.7, "test_metric": test, "on_validation_front": True,
                "not_worse_than_full": full_ok}

    runs = [_row("presets", 0, 0.8),
            {**_row("default", 0, 0.85), "tickets": [ticket(18434, 0.758, "norms and biases", True),
                                                     ticket(161666, 0.768, "whole modules", True)]},
            {**_row("lora", 0, 0.9), "tickets": [ticket(10754, 0.753, "norms and biases"),
                                                  ticket(27266, 0.780, "LoRA", True),
                                                  ticket(74498, 0.754, "LoRA", True),
                                                  ticket(652034, 0.781, "LoRA and whole modules", True),
                                                  ticket(22566146, 0.775, "whole modules", True)]},
            {**_row("default", 1, 0.85), "tickets": [ticket(5378, 0.613, "norms and biases", True)]},
            {**_row("lora", 1, 0.86), "tickets": [ticket(5378, 0.610, "norms and biases", True),
                                                  ticket(169730, 0.621, "LoRA", True)]},
            {**_row("lora", 2, 0.86), "tickets": [ticket(169730, 0.621, "LoRA", True)]}]  # no default row: left out
    lines = bench.lora_against_the_rest(runs)
    assert "| parameters | seed 0 | seed 1 |" in lines
    assert "| 0-30K | 0.780* / 0.758* | - / 0.613* |" in lines
    assert "| 30K-300K | 0.754* / 0.768* | 0.621* / - |" in lines
    assert "| 300K-1M | 0.781* / - | - / - |" in lines
    assert lines[-1] == "- LoRA's best at least the best without LoRA in 1 of 2 bands with both (seeds x bands)"
    assert bench.lora_against_the_rest([r for r in runs if r["strategy"] != "default"]) == []


def test_real_runs_says_how_long_a_run_s_trainings_took_against_another_s(tmp_path):
    """Budgets are trial-seconds, so each search row records how long its reference points' trainings took
    against the same presets in the presets run: the median ratio over the presets both trained in full, head
    only (a fraction of a second) and unfinished ones left out."""
    import pandas as pd

    bench = load_bench("real_runs")

    def run(name, seconds):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"preset": preset, "epoch": epoch, "epoch_seconds": s}
                for preset, per_epoch in seconds.items() for epoch, s in enumerate(per_epoch, 1)]
        rows.append({"preset": None, "epoch": 1, "epoch_seconds": 50.0})  # a searched trial
        pd.DataFrame(rows).to_parquet(folder / "trials.parquet")
        return folder

    presets = run("presets", {"head": [0.2, 0.2], "full": [30, 30], "value": [10, 10], "layernorm": [8, 8],
                              "ffn.in": [12, 12]})
    search = run("search", {"head": [0.1, 0.1], "full": [36, 36], "value": [11, 11], "layernorm": [12, 12],
                            "ffn.in": [20], "lora.qv": [9, 9]})
    assert bench.epoch_seconds_against(search, presets) == 1.2  # of 1.2, 1.1 and 1.5
    assert bench.epoch_seconds_against(run("other", {"lora.qv": [9, 9]}), presets) is None
