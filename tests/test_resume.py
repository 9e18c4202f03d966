"""A driver killed with SIGKILL mid-search, then `--resume`: nothing finished is lost or repeated.

The cluster is started here with `ray start --head` (its own temp dir and port), so the Ray
processes that a killed driver leaves behind are stopped at teardown and nothing outlives the test.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@pytest.fixture()
def ray_head(tmp_path):
    temp = Path("/tmp") / f"ts-ray-{os.getpid()}-{_free_port()}"  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_bin = Path(sys.executable).parent / "ray"
    # Every listening port chosen here, so this cluster never collides with the suite's own Ray.
    ports = [f"--{name}={_free_port()}" for name in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
        "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "object-manager-port")]
    subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp}",
                    "--include-dashboard=false", "--disable-usage-stats", *ports],
                   check=True, env=env, capture_output=True, timeout=120)
    from ray._private.services import get_node_ip_address

    yield f"{get_node_ip_address()}:{port}"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # only this cluster's processes, not the suite's Ray
        try:
            if str(temp).encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    subprocess.run(["rm", "-rf", str(temp)], check=False)


def _finished_trials(run_dir: Path, max_epochs: int) -> dict[str, list[float]]:
    done = {}
    for result in run_dir.glob("trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows and rows[-1].get("epoch") == max_epochs:
            done[result.parent.name.removeprefix("trial_")] = [r["accuracy"] for r in rows]
    return done


@pytest.mark.timeout(600)
def test_killed_driver_resumes_without_loss(ray_head, tiny_bert, text_csv, tmp_path):
    results = tmp_path / "results"
    args = [sys.executable, "-m", "search.run", "--address", ray_head, "--model", tiny_bert,
            "--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
            "--results-dir", str(results), "--name", "killed", "--num-samples", "6", "--max-epochs", "3",
            "--train-size", "96", "--eval-size", "24", "--max-length", "16", "--batch-size", "8",
            "--scheduler", "none"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_dir = results / "killed"
    deadline = time.monotonic() + 300
    while not _finished_trials(run_dir, 3) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    before = _finished_trials(run_dir, 3)
    assert before, "no trial finished before the deadline"
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    assert not (run_dir / "frontier.json").exists()  # a killed run does not look finished

    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(run_dir), "--address", ray_head],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert trials["trial_id"].nunique() == 6  # every planned trial, once
    assert not trials.duplicated(["trial_id", "epoch"]).any()
    assert set(trials.loc[trials["final"], "status"]) == {"completed"}
    for trial_id, accuracies in before.items():  # finished before the kill: untouched
        rows = trials[trials["trial_id"] == trial_id].sort_values("epoch")
        assert rows["metric"].tolist() == pytest.approx(accuracies)
    assert (run_dir / "frontier.json").is_file()
