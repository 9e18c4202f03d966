"""The hub mode is decided before transformers is imported; a hub that cannot be reached is one error line."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.driver import hub

REPO = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


@pytest.fixture
def no_hub_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))


def test_a_run_that_needs_no_hub_goes_offline(no_hub_setting):
    hub.decide_hub_mode(["--model", "minilm"])
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_users_setting_wins(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.decide_hub_mode(["--model", "org/model"])
    assert os.environ["HF_HUB_OFFLINE"] == "0"


@pytest.mark.parametrize("argv, needed", [
    (["--model", "org/model"], "model 'org/model'"),
    (["--model", "bert-base-uncased"], "model 'bert-base-uncased'"),
    (["--task", "rte"], "GLUE 'rte'"),
])
def test_an_unreachable_hub_is_said_at_once(no_hub_setting, argv, needed):
    started = time.monotonic()
    with pytest.raises(hub.HubUnreachable, match=needed):
        hub.decide_hub_mode(argv)
    assert time.monotonic() - started < hub.CONNECT_TIMEOUT_S + 2


def test_a_cached_hub_model_needs_no_hub(no_hub_setting, tmp_path):
    snapshot = tmp_path / "empty-cache" / "models--org--model" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    hub.decide_hub_mode(["--model", "org/model"])
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_command_line_says_it_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HUB_CACHE=str(tmp_path / "cache"))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "search.run", "--model", "some-org/some-model", "--results-dir",
                           str(tmp_path / "r")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and time.monotonic() - started < 30
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the model hub") and "HF_HUB_OFFLINE=1" in lines[0]
    assert not (tmp_path / "r").exists()
    # offline by the user's choice, and not in the cache: one line too
    done = subprocess.run([sys.executable, "-m", "search.run", "--model", "some-org/some-model"], cwd=REPO,
                          env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_trial_workers_get_the_hub_setting_and_a_wait_long_enough_to_reuse_a_busy_worker(monkeypatch):
    """worker_env: the driver's hub setting travels only where the user made one; Ray's wait for the
    previous trial's thread before it reuses a worker is raised from its 2 s (past it, a trial fails unretried),
    and a value the user set stands."""
    from search.driver import trials

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TUNE_FUNCTION_THREAD_TIMEOUT_S", raising=False)
    env = trials.worker_env()
    assert "HF_HUB_OFFLINE" not in env and env["TUNE_FUNCTION_THREAD_TIMEOUT_S"] == trials.REUSE_WAIT_SECONDS
    assert float(trials.REUSE_WAIT_SECONDS) >= 10
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TUNE_FUNCTION_THREAD_TIMEOUT_S", "5")
    env = trials.worker_env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["TUNE_FUNCTION_THREAD_TIMEOUT_S"] == "5"


def test_the_options_are_read_before_torch_or_transformers_loads():
    """The hub mode is decided from search.run's own parser, whose imports load neither (nor does the hub's)."""
    code = ("import sys; import search.driver.hub, search.settings.options, search.settings.config; "
            "print(sorted(m for m in ('torch', 'transformers', 'ray', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
