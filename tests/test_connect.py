"""`--address` of a cluster that is not there: one `error:` line within the bound it states, none of Ray's own."""

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def test_an_address_where_nothing_listens_is_one_line_and_exit_2(tmp_path):
    address = f"127.0.0.1:{_free_port()}"  # on this machine; nothing listens there
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "search.run", "--address", address, "--dry-run"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, lines
    bound = float(re.search(r"waited at most (\d+) s", lines[0]).group(1))
    assert lines[0].startswith(f"error: no Ray cluster at {address} (") and "connection refused" in lines[0]
    assert seconds < bound + 60  # the process's own start (imports) on a loaded machine, beyond the stated bound


def test_a_port_that_answers_but_is_no_ray_head_ends_at_the_bound(tmp_path):
    """A plain TCP server stands for the wrong service: the watchdog ends the process at the bound, with one line
    on the console and Ray's native warnings (which it prints every few seconds meanwhile) kept off it."""
    from ray.util import get_node_ip_address

    with socket.create_server(("0.0.0.0", 0)) as server:  # Ray dials this node's address, not the loopback
        server.listen()
        address = f"{get_node_ip_address()}:{server.getsockname()[1]}"
        script = textwrap.dedent(f"""
            from search.driver.trials import answers, native_stderr_into
            with native_stderr_into(None) as console:
                answers({address!r}, console, bound=8)
            print("answered")
        """)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                              timeout=120)
        seconds = time.monotonic() - started
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: no Ray cluster answered at {address} within 8 s (something listens there, but no Ray head?): "
        "check --address"]
    assert 8 <= seconds < 60


def test_the_address_ray_dials(monkeypatch):
    from search.driver.trials import dialled

    assert dialled("auto") is None and dialled("local") is None
    assert dialled("ray://head.example:10001") == ("head.example", 10001)
    host, port = dialled("10.1.2.3:6379")
    assert (host, port) == ("10.1.2.3", 6379)
