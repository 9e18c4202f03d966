"""A driver killed with SIGKILL mid-search, then `--resume`: nothing finished is lost or repeated.

The cluster is started here with `ray start --head` (its own temp dir and port), so the Ray
processes that a killed driver leaves behind are stopped at teardown and nothing outlives the test.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayProcesses

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def ray_head():
    with RayProcesses() as cluster:
        yield cluster.start_head(num_cpus=2)


def _finished_trials(run_dir: Path, max_epochs: int) -> dict[str, list[float]]:
    done = {}
    for result in run_dir.glob("trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows and rows[-1].get("epoch") == max_epochs:
            done[result.parent.name.removeprefix("trial_")] = [r["accuracy"] for r in rows]
    return done


def _wait_for_a_finished_trial(driver: subprocess.Popen, run_dir: Path, max_epochs: int = 3) -> dict:
    """The finished trials, once there is one (the driver must keep running meanwhile; 300 s at most)."""
    deadline = time.monotonic() + 300
    while not _finished_trials(run_dir, max_epochs) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    finished = _finished_trials(run_dir, max_epochs)
    assert finished, "no trial finished before the deadline"
    return finished


ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def _driver(address, model, data, results, name, trials, *extra) -> list[str]:
    """The command line of a small search on the cluster at `address`, 3 epochs a trial."""
    return [sys.executable, "-m", "search.run", "--address", address, "--model", model,
            "--data", str(data), "--text-column", "review", "--label-column", "sentiment",
            "--results-dir", str(results), "--name", name, "--num-samples", str(trials), "--max-epochs", "3",
            "--train-size", "96", "--eval-size", "24", "--max-length", "16", "--batch-size", "8", *extra]


def _killed_and_resumed(address: str, args: list[str], run_dir: Path, trials: int) -> None:
    """Start the search `args`, SIGKILL its driver once a trial has finished, `--resume` it as a user would (the
    run folder alone): every planned trial once, the ones finished before the kill untouched."""
    driver = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    before = _wait_for_a_finished_trial(driver, run_dir)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    assert not (run_dir / "frontier.json").exists()  # a killed run does not look finished

    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir), "--address", address],
                             cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    trials_table = pd.read_parquet(run_dir / "trials.parquet")
    assert trials_table["trial_id"].nunique() == trials  # every planned trial, once
    assert not trials_table.duplicated(["trial_id", "epoch"]).any()
    assert set(trials_table.loc[trials_table["final"], "status"]) == {"completed"}
    for trial_id, accuracies in before.items():  # finished before the kill: untouched
        rows = trials_table[trials_table["trial_id"] == trial_id].sort_values("epoch")
        assert rows["metric"].tolist() == pytest.approx(accuracies, nan_ok=True)  # NaN: an epoch not validated
    assert (run_dir / "frontier.json").is_file()


@pytest.mark.timeout(600)
def test_killed_driver_resumes_without_loss(ray_head, tiny_bert, text_csv, tmp_path):
    """A run whose model is a local folder."""
    results = tmp_path / "results"
    args = _driver(ray_head, tiny_bert, text_csv, results, "killed", 6, "--scheduler", "none")
    _killed_and_resumed(ray_head, args, results / "killed", 6)


@pytest.mark.timeout(600)
def test_a_killed_run_started_with_the_default_alias_resumes(ray_head, tmp_path):
    """As the README starts a run: no --model, no --data (the packaged MiniLM, by its alias, on Rotten Tomatoes);
    run.json names the model `minilm`, which is no folder, and the run resumes on the machine that made it."""
    results = tmp_path / "results"
    args = [sys.executable, "-m", "search.run", "--address", ray_head, "--results-dir", str(results),
            "--name", "default", "--num-samples", "5", "--max-epochs", "3", "--train-size", "32", "--eval-size", "16",
            "--test-size", "16", "--max-length", "16", "--batch-size", "8", "--scheduler", "none"]
    _killed_and_resumed(ray_head, args, results / "default", 5)
    assert json.loads((results / "default" / "run.json").read_text())["args"]["model"] == "minilm"


@pytest.mark.timeout(600)
def test_ctrl_c_leaves_a_run_to_resume_not_a_finished_one(ray_head, tiny_bert, text_csv, tmp_path):
    results = tmp_path / "results"
    args = _driver(ray_head, tiny_bert, text_csv, results, "stopped", 8)
    driver = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = results / "stopped"
    # Ctrl-C after the first trial ends, by the progress line (trial folders are written with Ray's
    # experiment snapshots, every 10 s or more: by then these tiny trials could all be done).
    output = []
    for line in driver.stdout:
        output.append(line)
        if "trials ended" in line:
            break
    driver.send_signal(signal.SIGINT)
    rest, _ = driver.communicate(timeout=120)
    output = "".join(output) + rest
    assert driver.returncode == 130, output[-3000:]
    assert "--resume" in output
    assert (run_dir / "trials.parquet").is_file() and not (run_dir / "frontier.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir), "--address", ray_head],
                             cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert pd.read_parquet(run_dir / "trials.parquet")["trial_id"].nunique() == 8
    assert (run_dir / "frontier.json").is_file()


@pytest.mark.timeout(600)
def test_a_killed_driver_s_own_ray_is_stopped_and_resume_stops_what_is_left(tiny_bert, text_csv, tmp_path):
    """A driver with its own local Ray (no --address), SIGKILLed mid-search: Ray's agents outlive it (about a
    minute on ray 2.60); `search.cleanup` ends every recorded process at once, and `--resume` does the same."""
    import psutil

    results = tmp_path / "results"
    env = {**ENV, "RAY_TMPDIR": f"/tmp/ts-own-{os.getpid()}"}  # short: Ray's socket paths are limited
    args = [a for a in _driver("-", tiny_bert, text_csv, results, "own", 6, "--scheduler", "none") if a]
    args = args[:args.index("--address")] + args[args.index("--address") + 2:]
    driver = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_dir = results / "own"
    _wait_for_a_finished_trial(driver, run_dir)
    recorded = json.loads((run_dir / "ray_processes.json").read_text())
    assert recorded["driver"]["pid"] == driver.pid
    names = {p["name"] for p in recorded["processes"]}
    assert {"gcs_server", "raylet"} <= names and any("Agent" in n for n in names), names
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    time.sleep(5)

    def alive():
        out = []
        for p in recorded["processes"]:
            try:
                if abs(psutil.Process(p["pid"]).create_time() - p["created"]) < 0.01:
                    out.append(p["name"])
            except psutil.Error:
                pass
        return out

    assert alive(), "no Ray process outlived the killed driver: the cleanup below proves nothing"
    done = subprocess.run([sys.executable, "-m", "search.cleanup", str(run_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("stopped "), done.stdout + done.stderr
    assert alive() == []
    again = subprocess.run([sys.executable, "-m", "search.cleanup", str(run_dir)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "no Ray process of this run is left running"
    # the resumed driver records its own Ray, and the run finishes with every planned trial
    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=500)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (run_dir / "frontier.json").is_file()
    assert json.loads((run_dir / "ray_processes.json").read_text())["driver"]["pid"] != driver.pid


@pytest.mark.timeout(600)
def test_ctrl_c_on_a_driver_with_its_own_ray_leaves_no_ray_process(tiny_bert, text_csv, tmp_path):
    """Ctrl-C on a driver that started its own local Ray: once it has exited, none of the Ray processes it
    recorded is still running (and --resume then finishes the run)."""
    import psutil

    results = tmp_path / "results"
    env = {**ENV, "RAY_TMPDIR": f"/tmp/ts-int-{os.getpid()}"}
    args = [a for a in _driver("-", tiny_bert, text_csv, results, "own", 16, "--scheduler", "none") if a]
    args = args[:args.index("--address")] + args[args.index("--address") + 2:]
    driver = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = results / "own"
    output = []
    for line in driver.stdout:  # Ctrl-C once the first trial has ended (the progress line says so)
        output.append(line)
        if "trials ended" in line:
            break
    recorded = json.loads((run_dir / "ray_processes.json").read_text())
    assert any("Agent" in p["name"] for p in recorded["processes"]), recorded
    driver.send_signal(signal.SIGINT)
    rest, _ = driver.communicate(timeout=180)
    assert driver.returncode == 130, ("".join(output) + rest)[-3000:]

    def alive():
        out = []
        for p in recorded["processes"]:
            try:
                process = psutil.Process(p["pid"])
                if abs(process.create_time() - p["created"]) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
                    out.append(p["name"])
            except psutil.Error:
                pass
        return out

    assert alive() == []
    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=500)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (run_dir / "frontier.json").is_file()


def test_cleanup_refuses_while_the_driver_runs_and_a_missing_folder(tmp_path, capsys):
    from search import cleanup
    from search.driver.processes import record_ray_processes as record

    record(tmp_path)  # this process stands for a driver that is still running
    assert cleanup.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: the run's driver is still running (pid ")
    assert cleanup.main([str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: run folder not found: {tmp_path / 'nothing'}"


FLAT_LAYOUT_RUN = Path(__file__).resolve().parent / "data" / "flat_layout_run.tar.gz"


@pytest.mark.timeout(600)
def test_a_run_of_the_flat_layout_resumes_from_a_moved_folder(tiny_bert, text_csv, tmp_path):
    """tests/data/flat_layout_run.tar.gz: a run started at commit 1c995c1, when search/ was one flat folder (its
    pickles name `search._searcher`, `search._tpe`, `search._journal`, `search._pareto_asha`, `search._trials`,
    `search._progress`), made in /tmp/oldlayout with

        python -m search.run --model MODEL --data reviews.csv --text-column review --label-column sentiment
            --results-dir /tmp/oldlayout/results --name old --num-samples 12 --max-epochs 3 --train-size 96
            --eval-size 24 --test-size 24 --max-length 16 --batch-size 8 --cpus-per-trial 1
            --no-reference-points --modules query,value,attn.norm,ffn.norm

    (MODEL and reviews.csv as the `tiny_bert` and `text_csv` fixtures make them), its driver killed with SIGKILL
    once two trials had finished, its Ray stopped, prefix_cache/ and ray_processes.json removed. Ray's saved
    experiment held 2 trials while its search generator counted 10 (the two finished ones were made after
    Ray's last snapshot of the trials: Ray does not know them). Resumed here, in another folder: the saved
    trials and as many new ones as make the 12 planned, each once, all written in this folder."""
    import tarfile

    with tarfile.open(FLAT_LAYOUT_RUN) as archive:
        archive.extractall(tmp_path, filter="data")
    run_dir = tmp_path / "old"
    assert b"search._searcher" in (run_dir / "tuner.pkl").read_bytes()  # the flat layout's module paths
    saved = json.loads(max(run_dir.glob("experiment_state-*.json")).read_text())["trial_data"]
    held = {json.loads(trial)["trial_id"] for trial, _ in saved}
    assert len(held) == 2

    # the model and data are where the machine that made the run had them (named under tmp_path here, so that no
    # folder outside it decides the test): one line says so, and how to point
    info = json.loads((run_dir / "run.json").read_text())
    gone = tmp_path / "made-elsewhere"
    info["args"].update(model=str(gone / "model"), data=str(gone / "reviews.csv"))
    (run_dir / "run.json").write_text(json.dumps(info))
    lost = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir)],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert lost.returncode == 2 and lost.stderr.strip().splitlines() == [
        f"error: model folder not found: {gone / 'model'} (where run old had it); if this machine has it "
        "elsewhere, point to it: --resume RUN --model PATH"], lost.stderr
    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir), "--model", tiny_bert,
                              "--data", str(text_csv)],  # where this machine has them
                             cwd=REPO, env=ENV, capture_output=True, text=True, timeout=500)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "lacked 8 trial(s)" in resumed.stdout

    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert trials["trial_id"].nunique() == 12
    assert not trials.duplicated(["trial_id", "epoch"]).any()
    assert held <= set(trials["trial_id"])
    assert all((run_dir / f"trial_{t}" / "result.json").is_file() for t in trials["trial_id"])  # in this folder
    assert (run_dir / "frontier.json").is_file()
    assert "s left]" in resumed.stdout and "[ -" not in resumed.stdout  # the resumed process's own times
    info = json.loads((run_dir / "run.json").read_text())  # where this machine has them, for export and report
    assert info["model"] == tiny_bert and (info["args"]["model"], info["args"]["data"]) == (tiny_bert, str(text_csv))
