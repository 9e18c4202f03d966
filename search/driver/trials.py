"""What the run's trials run on: Ray started or joined, the model's files shared, the trainable bound.

`init_ray` joins the cluster at `--address` (shipping the project's code) or starts a private local
Ray. `trial_settings` is what every trial shares; `build_trainable` binds it and the data (minus
the test split) to `trainables.finetune`, or to `trainables.replay` for `--replay TABLE`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search.compat import quiet_worker_exits
from search.driver.prepare import Prepared
from search.settings.config import RunConfig
from search.steer.strategies import decision_epochs, first_rung
from spaces import UsageError, model_folder
from trainables import ModelFiles, ReplayTable, TrialSettings, finetune, replay

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # search/driver/trials.py: the folder that holds search/
SHIP_EXCLUDES = [".venv", "results", ".git", "*.egg-info", "__pycache__"]


# Ray Tune reuses a trial's worker for the next trial (reuse_actors: no new process, no imports again) only once
# the previous trial's training thread has ended, and waits TUNE_FUNCTION_THREAD_TIMEOUT_S for it (Ray's default
# 2 s); past that the new trial fails at once, never retried (Ray's reset is outside --max-failures), and on a busy
# node the thread takes longer (docs/measurements.md, "On a cluster: Ray and the driver").
REUSE_WAIT_SECONDS = "30"


def worker_env() -> dict[str, str]:
    """The environment every trial's worker gets, a value the user set on the driver standing."""
    # Trials get the model's files from the driver (trainables._model_files), so workers need no hub; the
    # driver's own hub setting goes with them only where the user made one.
    env = {"TOKENIZERS_PARALLELISM": "false",
           "TUNE_FUNCTION_THREAD_TIMEOUT_S": os.environ.get("TUNE_FUNCTION_THREAD_TIMEOUT_S", REUSE_WAIT_SECONDS)}
    if "HF_HUB_OFFLINE" in os.environ:
        env["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    return env


def trial_data(data):
    """The data the trials get: everything but the test split (nothing the search decides can read it)."""
    return dataclasses.replace(data, test=None)


def init_ray(config: RunConfig, log: Path | None = None) -> bool:
    """Join `--address` or start a private local Ray; True when this driver started one (its processes are
    the run's: search.driver.processes). Joining waits at most CONNECT_BOUND_S for the
    cluster to answer, with what Ray's native code logs meanwhile going to `log` (the run's log; nowhere for a
    dry run), not the console."""
    import ray

    if ray.is_initialized():  # embedded use (tests, notebooks): run on the Ray already connected
        return False
    address = config.address
    local = address is None
    # Ray 2.60 turns token auth on by default; a private local instance does not need it.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled" if local else "token")
    runtime_env: dict = {"env_vars": worker_env()}
    kwargs: dict[str, Any] = dict(address=address, include_dashboard=False if local else None,
                                  logging_level=logging.WARNING, log_to_driver=True, runtime_env=runtime_env)
    try:
        if address is None:
            ray.init(**kwargs)
        else:  # worker nodes may not see this machine's files: ship the project's code with the job
            runtime_env |= {"working_dir": str(PROJECT_ROOT), "excludes": SHIP_EXCLUDES}
            reachable(address)
            with native_stderr_into(log, keep=config.verbose) as console:
                answers(address, console)
                ray.init(**kwargs)
    except (ConnectionError, TimeoutError) as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {config.address}: {str(exc).splitlines()[0]}") from None
    if not config.verbose:  # the quiet console: no traceback of a trial worker that Ray stopped (search.compat)

        quiet_worker_exits()
    return local and not os.environ.get("RAY_ADDRESS")  # RAY_ADDRESS: ray.init joined a running cluster


def trial_resources(config: RunConfig) -> dict[str, float]:
    return {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


_published: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # run -> its model's files in Ray


def publish_model(prep: Prepared):
    """The model's files in Ray's object store, for every trial on every node: put there once a run."""
    if prep not in _published:
        _published[prep] = ModelFiles.publish(prep.config.model, model_folder(prep.model))
    return _published[prep]


def trial_settings(prep: Prepared):
    """What every trial of the run shares (the searched choices come in each trial's config)."""
    config = prep.config
    return TrialSettings(
        model=prep.model,
        num_labels=prep.task.num_labels,
        max_epochs=config.max_epochs,
        metric=prep.task.metric,
        batch_size=config.batch_size,
        seed=config.seed,
        threads=max(1, int(config.cpus_per_trial)),
        prefix_cache=not config.no_prefix_cache,
        cache_dir=prep.prefix_cache,
        pooling=prep.pooling,
        lr_groups=config.lr_groups,
        model_files=publish_model(prep),
        fingerprint=prep.taxonomy.fingerprint,
        eval_epochs=None if config.eval_every_epoch else eval_epochs(prep),
    )


def eval_epochs(prep: Prepared) -> tuple[int, ...]:
    """The epochs after which the run's trials are validated: where its scheduler decides, and the last."""
    config = prep.config
    rung = first_rung(config.grace_period, len(prep.data.train), config.batch_size)
    return decision_epochs(config.scheduler, rung, config.max_epochs)


def build_trainable(prep: Prepared):
    """The trial function with the run's shared data and settings bound (data goes to the object store once).

    With `--replay TABLE`, trials replay recorded curves instead of training (benchmarks, load tests).
    """
    from ray import tune

    config = prep.config
    if config.replay:
        table = ReplayTable.from_parquet(config.replay, prep.task.metric)
        return tune.with_resources(
            tune.with_parameters(replay, table=table, max_epochs=config.max_epochs,
                                 time_scale=config.replay_time_scale),
            trial_resources(config),
        )
    return tune.with_resources(
        tune.with_parameters(finetune, data=trial_data(prep.data), settings=trial_settings(prep)),
        trial_resources(config),
    )


# -- joining a cluster at --address ----------------------------------------------------------------------
# Joining a Ray cluster at `--address`: a bounded wait and one clear line, never Ray's retries on the console.
#
# Left to itself, `ray.init(address=...)` of a cluster that is not there retries for minutes while Ray's native
# code prints a warning every few seconds to the process's stderr (file descriptor 2, below Python's
# `sys.stderr`). So a driver first opens a TCP connection to the address Ray will dial (`reachable`, at most
# CONNECT_BOUND_S): nothing listening, or no answer, is one `error:` line at once, before the run's plan is made.
# Then, with descriptor 2 pointed at the run's log (`native_stderr_into`), `answers` asks the port for Ray's GCS under
# a watchdog (`within`): a port that accepts connections but is no Ray head ends the driver with one line once the
# bound has passed. Only then does `ray.init` join (and upload the project's code, which may take its time).

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
