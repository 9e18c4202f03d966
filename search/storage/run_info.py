"""run.json: what a run is (its options, model, task, metric, fingerprint), one typed, versioned record, written
before any trial and read back here only.

Version 1 is the first that says its version; a run.json without one (version 0) is read with what runs written
then did (`pooling`: cls where it was not recorded). Fields a later version adds take defaults here, so older
runs read alike; fields this version does not know are dropped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.storage.files import RUN_FILE, write_json
from spaces import LEGACY_POOLING, UsageError

RUN_INFO_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    args: dict[str, Any]  # the run's options, as RunConfig.as_dict() gave them (RunConfig.from_saved reads them)
    model: str  # resolved: a folder or hub id
    task: str
    metric: str  # the one the search optimised
    num_labels: int
    max_epochs: int
    total_params: int
    fingerprint: str  # of the model's parameters (spaces.Taxonomy.fingerprint): export refuses a changed model
    label_names: list[str] = field(default_factory=list)
    pooling: str = LEGACY_POOLING
    granularity: str = "module"
    space_size: int | None = None
    reference_points: dict[str, dict] = field(default_factory=dict)
    started: str = ""
    version: int = RUN_INFO_VERSION

    def write(self, run_dir: str | Path) -> Path:
        return write_json(Path(run_dir) / RUN_FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, run_dir: str | Path) -> RunInfo:
        """A run folder's run.json; UsageError (one line) when there is none or it is not a run's."""
        path = Path(run_dir) / RUN_FILE
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{run_dir} is not a ticketsearch run folder (no {RUN_FILE})") from None
        except ValueError as exc:
            raise UsageError(f"{path} is not JSON: {exc}") from None
        if not isinstance(saved, dict):
            raise UsageError(f"{path} is not a ticketsearch run.json")
        saved.setdefault("version", 0)
        args = saved.get("args") or {}
        saved.setdefault("pooling", args.get("pooling") or LEGACY_POOLING)
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in saved.items() if k in known})
        except TypeError as exc:  # a field every version wrote is missing
            raise UsageError(f"{path} is not a ticketsearch run.json ({exc})") from None

