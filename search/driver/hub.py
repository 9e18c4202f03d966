"""Whether this driver may use the model hub, decided before transformers is imported.

`huggingface_hub` reads `HF_HUB_OFFLINE` once, when it is first imported, so the entry points
call `decide_hub_mode` as their first statement. The user's own setting always wins. Otherwise a
run that needs nothing from the hub (a local folder or a packaged alias, built-in or local data)
runs offline, and one that names a hub id checks in a few seconds that the hub answers, instead
of letting the hub client retry for most of a minute. Workers never need the hub: the driver
sends them the model's files (trainables._model_files). Each entry point says what its own arguments need:
`search.run` reads its options with its own parser (whose imports load neither torch nor transformers),
`search.export` and `search.report` the run.json of the run they are given.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from search.settings.options import parse_options
from search.storage.run_info import RunInfo
from spaces import UsageError, is_local
from trainables import GLUE

CONNECT_TIMEOUT_S = 3.0


class HubUnreachable(Exception):
    """The run needs the hub and the hub does not answer; the message says the way out."""


def run_needs(argv: list[str]) -> list[str]:
    """What in these `search.run` options needs the hub: a hub model id, a GLUE task without --data-dir."""
    try:
        known, _ = parse_options(argv, add_help=False)  # search.run's own parser and --config, before any check
    except UsageError:  # bad options get their one clear line when the run parses them
        return []
    if known["resume"]:  # a resumed run's model and data are in its run.json, when it is on this disk
        return saved_run_needs([known["resume"]])
    return _needs(known["model"], known["task"], known["data"], known["data_dir"])


def saved_run_needs(argv: list[str]) -> list[str]:
    """What the run named by the first argument that is not a flag needs from the hub (`search.export RUN`,
    `search.report RUN`, `search.run --resume RUN`): its model, from its run.json, when that is on this disk."""
    run = next((a for a in argv if not a.startswith("-")), None)
    try:
        saved = RunInfo.read(run).args if run else None
    except Exception:  # not a run folder (or remote): the command says so itself
        return []
    if not saved:
        return []
    return _needs(saved["model"], saved["task"], saved.get("data"), saved.get("data_dir"))


def _needs(model: str, task: str, data: str | None, data_dir: str | None) -> list[str]:
    needs = []
    if not is_local(model) and not _cached(model):
        needs.append(f"model '{model}'")
    if task in GLUE and not data and not data_dir:
        needs.append(f"GLUE '{task}'")
    return needs


def _cached(repo_id: str) -> bool:
    """True when the hub cache already holds a snapshot of `repo_id` with its config (no network)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    snapshots = Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return any(snapshots.glob("*/config.json"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub's endpoint opens within `timeout` seconds."""
    parts = urlsplit(hub_endpoint())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def decide_hub_mode(argv: list[str] | None = None, needs_of: Callable[[list[str]], list[str]] = run_needs) -> None:
    """Set `HF_HUB_OFFLINE` for this process from the user's environment and what the run needs.

    Raises HubUnreachable when the run needs the hub and it does not answer.
    """
    if "HF_HUB_OFFLINE" in os.environ:  # the user decided
        return
    needs = needs_of(sys.argv[1:] if argv is None else argv)
    if not needs:
        os.environ["HF_HUB_OFFLINE"] = "1"
        return
    if not hub_reachable():
        raise HubUnreachable(
            f"the model hub ({hub_endpoint()}) cannot be reached, and {' and '.join(needs)} "
            f"must come from it: give a local folder (--model PATH, --data-dir DIR), or set HF_HUB_OFFLINE=1 "
            f"to use what the hub cache already holds")


def start_cli(needs_of: Callable[[list[str]], list[str]] = run_needs) -> None:
    """The first statement of every command-line entry point: decide the hub mode from what the command's own
    arguments need (`needs_of`), or exit 2 with one line."""
    try:
        decide_hub_mode(needs_of=needs_of)
    except HubUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
