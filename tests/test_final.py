"""The ticket at the user's budget: the final stage of a run (`--final-train-size`), `search.train` on one ticket and
on a finished run's front, and search.export choosing from the final front."""

import json
import re
import shutil

import pytest

import search
from search import export, run, train
from search.driver.again import Budget
from spaces import SPEC_FILE, Spec, UsageError


def _args(tiny_bert, text_csv, results, *extra):
    return ["--model", tiny_bert, "--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
            "--results-dir", str(results), "--max-epochs", "2", "--train-size", "32", "--eval-size", "24",
            "--test-size", "24", "--max-length", "16", "--batch-size", "8", "--num-samples", "5", *extra]


@pytest.fixture(scope="module")
def final_run(ray_session, tiny_bert, text_csv, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    assert run.main(_args(tiny_bert, text_csv, results, "--name", "final", "--final-train-size", "all",
                          "--final-epochs", "3")) == 0
    return results / "final"


def test_the_final_stage_retrains_the_front_and_the_reference_points(final_run, capsys):
    document = json.loads((final_run / "frontier.json").read_text())
    final = document["final"]
    assert final["budget"] == {"train_size": 96, "epochs": 3, "all_rows": True}  # 120 rows, 24 of them test rows
    assert final["search_budget"] == {"train_size": 32, "epochs": 2}
    retrained = {e["trial_id"]: e for e in final["retrained"]}
    scored = {p["trial_id"] for p in [*document["points"], *document["references"]]}
    assert set(retrained) == scored  # the front's tickets and every reference point, each once
    for entry in retrained.values():
        assert entry["checkpoint"].startswith("final/") and (final_run / entry["checkpoint"]).is_dir()
        assert entry["epoch"] == 3 and entry["test_metric"] is not None and entry["search_test_metric"] is not None
        assert entry["test_low"] <= entry["test_metric"] <= entry["test_high"]
    assert {p["trial_id"] for p in final["points"]} == {t for t, e in retrained.items() if e["on_final_front"]}
    tau = final["kendall_tau"]
    assert tau["points"] == len(retrained) and (tau["test"] is None or -1 <= tau["test"] <= 1)
    for flip in final["flipped"]:  # the verdicts that differ between the budgets, and only those
        assert flip["search"] != flip["final"] and retrained[flip["trial_id"]]["not_worse_than_full"] == flip["final"]
    page = (final_run / "report.html").read_text()
    assert 'id="final"' in page and "At the final budget" in page and "96 training rows" in page


def test_export_chooses_from_the_final_front(final_run, tmp_path, capsys):
    final = json.loads((final_run / "frontier.json").read_text())["final"]
    best = max(final["points"], key=lambda p: (p["metric"], -p["trainable_params"]))
    assert export.main([str(final_run), "--out", str(tmp_path / "e")]) == 0
    spec = Spec.load(tmp_path / "e" / SPEC_FILE)
    assert spec.source["trial"] == best["trial_id"] and spec.metrics["accuracy"] == best["metric"]
    assert spec.hyperparameters["max_epochs"] == 3 and spec.hyperparameters["train_size"] == 96
    assert "trained again at the final budget (96 rows x 3 epochs)" in capsys.readouterr().out
    saved = (final_run / best["checkpoint"] / "tensors.safetensors").read_bytes()
    assert (tmp_path / "e" / "tensors.safetensors").read_bytes() == saved  # the retrained model, not the search's


def test_the_ticket_command_trains_one_ticket_at_the_budget_and_resumes(final_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(final_run, copy)
    document = json.loads((copy / "frontier.json").read_text())
    del document["final"]  # as a run without a final stage: export and train choose from the search's front
    (copy / "frontier.json").write_text(json.dumps(document))
    full = next(p for p in document["references"] if p["preset"] == "full")
    assert export.main([str(copy), "--trial", full["trial_id"]]) == 0  # RUN/export/trial_ID: the run beside it
    args = [str(copy / "export" / f"trial_{full['trial_id']}"), "--train-size", "48", "--epochs", "1", "--save-model"]
    assert export.main([str(copy), "--trial", full["trial_id"], "--out", str(tmp_path / "elsewhere")]) == 0
    assert train.main([str(tmp_path / "elsewhere"), "--train-size", "48"]) == 2  # its run is not beside it
    assert "name its folder with --run RUN" in capsys.readouterr().err
    assert train.main(args) == 0
    out = capsys.readouterr().out
    folder = copy / "export" / f"trial_{full['trial_id']}-48x1"
    assert "on 48 training rows x 1 epochs (the search: 32 x 2)" in out
    assert "the search's model (32 rows x 2 epochs): test accuracy" in out and "paired 95%" in out
    spec = Spec.load(folder / SPEC_FILE)
    assert spec.source["budget"] == {"train_size": 48, "epochs": 1, "all_rows": False}
    searched = spec.metrics["search_budget"]
    assert searched["test_accuracy"] == pytest.approx(full["test_metric"])  # paired with the search's own model
    assert spec.metrics["test_rows"] == document["test"]["rows"]
    # loads three ways, each checked by the export itself: the tensors, the model folder (full fine-tuning has no
    # PEFT adapter beyond LN tuning of every module: written where it exists)
    search.load_ticket(folder)
    assert (folder / "model" / "config.json").is_file()
    # run again: the retraining is restored, not repeated, and gives the same model
    before = (folder / "tensors.safetensors").read_bytes()
    assert train.main(args) == 0
    assert "resuming the retraining" in capsys.readouterr().out
    assert (folder / "tensors.safetensors").read_bytes() == before


def test_train_front_on_a_finished_run_and_bad_input(final_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(final_run, copy, ignore=shutil.ignore_patterns("final"))
    document = json.loads((copy / "frontier.json").read_text())
    del document["final"]
    (copy / "frontier.json").write_text(json.dumps(document))
    assert train.main([str(copy), "--front", "--train-size", "40", "--epochs", "1"]) == 0
    final = json.loads((copy / "frontier.json").read_text())["final"]
    assert final["budget"]["train_size"] == 40 and len(final["retrained"]) >= 2
    capsys.readouterr()
    for bad, line in ((["--train-size", "none"], "--train-size 'none' is not a number of rows or 'all'"),
                      (["--epochs", "0"], "--epochs must be at least 1, not 0"),
                      (["--front", "--trial", "x"], "--front trains the whole front and the reference points")):
        assert train.main([str(copy), *bad]) == 2
        assert capsys.readouterr().err.startswith(f"error: {line}")
    assert train.main([str(tmp_path / "nothing")]) == 2


def test_budget_parsing():
    assert Budget.parse("all", None, 3) == Budget(None, 3)
    assert Budget.parse("4,096", 2, 3) == Budget(4096, 2)
    with pytest.raises(UsageError):
        Budget.parse("0", None, 3)


def test_the_benchmark_summarises_a_run_with_a_final_stage(final_run, tmp_path, capsys):
    from conftest import load_bench

    bench = load_bench("final_budget")
    assert bench.main([str(final_run), "--out", str(tmp_path / "summary.json")]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["runs"][0]
    final = json.loads((final_run / "frontier.json").read_text())["final"]
    assert summary["retrained"] == len(final["retrained"]) and summary["kendall_tau"] == final.get("kendall_tau")
    assert {row["free_answer"] for row in summary["versus_free_answers"]} <= {"layernorm", "beft"}
    assert "| final (0) |" in capsys.readouterr().out


@pytest.mark.timeout(600)
def test_a_killed_ticket_command_continues_where_it_stopped(final_run, tmp_path):
    """SIGKILL `search.train` mid-training (on a cluster of its own, so nothing outlives the test), run the same
    command again: it restores the retraining from its last checkpoint, not from the first epoch."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from conftest import RayProcesses

    copy = tmp_path / "run"
    shutil.copytree(final_run, copy, ignore=shutil.ignore_patterns("final"))
    document = json.loads((copy / "frontier.json").read_text())
    del document["final"]
    (copy / "frontier.json").write_text(json.dumps(document))
    full = next(p for p in document["references"] if p["preset"] == "full")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    repo = Path(__file__).resolve().parent.parent
    with RayProcesses() as cluster:
        address = cluster.start_head(num_cpus=2)
        command = [sys.executable, "-m", "search.train", str(copy), "--trial", full["trial_id"], "--epochs", "100",
                   "--address", address]
        driver = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        for line in driver.stdout:
            if "epoch 3/100" in line:
                break
        # Ray restores a trial from the last checkpoint its experiment snapshot (every ~10 s) recorded: kill once one
        # is recorded, so that the restart has one to continue from
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                "checkpoint_0" in state.read_text() for state in copy.glob("train-*/experiment_state-*.json")):
            assert driver.poll() is None, "the retraining ended before Ray recorded a checkpoint"
            time.sleep(0.5)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        assert not (copy / "export" / f"trial_{full['trial_id']}-96x100").exists()
        again = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming the retraining" in again.stdout
    epochs = [int(e) for e in re.findall(r"epoch (\d+)/100", again.stdout)]
    assert epochs and min(epochs) > 1 and max(epochs) == 100  # continued from a checkpoint, to the last epoch
    assert (copy / "export" / f"trial_{full['trial_id']}-96x100" / SPEC_FILE).is_file()
