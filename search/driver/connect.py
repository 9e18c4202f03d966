"""Joining a Ray cluster at `--address`: a bounded wait and one clear line, never Ray's retries on the console.

Left to itself, `ray.init(address=...)` of a cluster that is not there retries for minutes while Ray's native
code prints a warning every few seconds to the process's stderr (file descriptor 2, below Python's
`sys.stderr`). So a driver first opens a TCP connection to the address Ray will dial (`reachable`, at most
CONNECT_BOUND_S): nothing listening, or no answer, is one `error:` line at once, before the run's plan is made.
Then, with descriptor 2 pointed at the run's log (`native_stderr_into`), `answers` asks the port for Ray's GCS under
a watchdog (`within`): a port that accepts connections but is no Ray head ends the driver with one line once the
bound has passed. Only then does `ray.init` join (and upload the project's code, which may take its time).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spaces import UsageError

CONNECT_BOUND_S = 30.0  # the longest a driver waits for a cluster at --address before it says it is not there
RAY_CLIENT_PORT = 10001


def dialled(address: str) -> tuple[str, int] | None:
    """The (host, port) that `ray.init(address)` connects to: Ray's own reading of the address (a loopback host
    becomes this node's address, as Ray dials it), the Ray Client's server for `ray://`; None for `auto` and
    `local` (Ray finds those itself, and says at once when there is none)."""
    if address in ("auto", "local"):
        return None
    if "://" in address:
        host, _, port = address.split("://", 1)[1].rpartition(":")
        return host, int(port or RAY_CLIENT_PORT)
    from ray._private.services import canonicalize_bootstrap_address

    canonical = canonicalize_bootstrap_address(address) or address
    host, _, port = canonical.rpartition(":")
    return host, int(port)


def reachable(address: str, bound: float = CONNECT_BOUND_S) -> None:
    """UsageError, within `bound` seconds, when nothing accepts a connection where `address` points."""
    target = dialled(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=bound):
            return
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise UsageError(f"no Ray cluster at {address} ({target[0]}:{target[1]}: {reason}, waited at most "
                         f"{bound:g} s): start one there with `ray start --head`, or give its address") from None


def answers(address: str, console: int, bound: float = CONNECT_BOUND_S) -> None:
    """Return once Ray's GCS answers at `address` (a HOST:PORT Ray dials itself); UsageError when it says no,
    `error:` and exit code 2 on `console` when nothing has answered after `bound` seconds."""
    target = dialled(address)
    if target is None or "://" in address:  # found by Ray itself, or a Ray Client server (no GCS to ask)
        return
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    message = (f"no Ray cluster answered at {address} within {bound:g} s (something listens there, but no Ray "
               "head?): check --address")
    with within(bound, message, console):
        try:
            GcsClient(address=f"{target[0]}:{target[1]}")
        except Exception:  # Ray's RpcError: it gave up before the bound
            raise UsageError(message) from None


@contextmanager
def native_stderr_into(path: Path | None, keep: bool = False) -> Iterator[int]:
    """Within the block, file descriptor 2 (where Ray's native code logs) writes to `path` (appended; nowhere
    when None; left on the console with `keep`, for --verbose); yields a descriptor of the console's stderr for
    what must still reach the user."""
    sys.stderr.flush()
    console = os.dup(2)
    target = None
    if not keep:
        target = os.open(path if path is not None else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, 2)
    try:
        yield console
    finally:
        sys.stderr.flush()
        if target is not None:
            os.dup2(console, 2)
            os.close(target)
        os.close(console)


@contextmanager
def within(bound: float, message: str, console: int) -> Iterator[None]:
    """End the process with `error: message` on `console` and exit code 2 when the block has not finished after
    `bound` seconds (a call into Ray's native code cannot be interrupted from Python)."""
    def expire() -> None:
        os.write(console, f"error: {message}\n".encode())
        os._exit(2)

    timer = threading.Timer(bound, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
