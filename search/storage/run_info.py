"""run.json, read back: what a run is (its options, model, task, metric, fingerprint), as
search.driver.prepare.write_run_info wrote it before any trial."""

from __future__ import annotations

import json
from pathlib import Path

from search.storage.files import RUN_FILE
from spaces import LEGACY_POOLING, UsageError


def read_run_info(run_dir: str | Path) -> dict:
    """A run folder's run.json, read back the one way: with what runs written before a field existed did
    (`pooling`: cls)."""
    path = Path(run_dir) / RUN_FILE
    try:
        run = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_dir} is not a ticketsearch run folder (no {RUN_FILE})") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    run.setdefault("pooling", run.get("args", {}).get("pooling") or LEGACY_POOLING)
    return run
