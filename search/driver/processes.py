"""The Ray processes a run's driver started on this machine, so that a killed driver leaves none behind.

A driver that starts a private local Ray (no `--address`) owns its processes: the GCS, the raylet, the
workers and the raylet's agents. When the driver is killed (SIGKILL, a lost terminal), most of them exit
with it, but Ray's dashboard and runtime-env agents (ray==2.60) outlive it for about a minute.
`record_ray_processes` writes their ids to RUN_DIR/ray_processes.json
once Ray is up; `stop_leftovers` ends those still alive (matched by pid and start time, so a reused pid is
never touched) once the driver is gone. `--resume` runs it first; `python -m search.cleanup RUN` does it
alone. A cluster the run joined (`--address`) is not the run's: nothing is recorded or stopped there.
"""

from __future__ import annotations

import json
from pathlib import Path

from search.storage.files import RAY_PROCESSES_FILE
from spaces import UsageError


def _identity(process) -> dict:
    return {"pid": process.pid, "created": process.create_time(), "name": process.name()}


def record_ray_processes(run_dir: Path) -> Path:
    """Write the driver's and its descendant processes' ids (the local Ray it started) to the run folder."""
    import psutil

    me = psutil.Process()
    processes = []
    for child in me.children(recursive=True):
        try:
            processes.append(_identity(child))
        except psutil.Error:  # exited while listed
            continue
    path = Path(run_dir) / RAY_PROCESSES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"driver": _identity(me), "processes": processes}, indent=1) + "\n")
    tmp.replace(path)
    return path


def _alive(identity: dict):
    """The process `identity` names, if it still runs (the same pid and start time), else None."""
    import psutil

    try:
        process = psutil.Process(identity["pid"])
        same = abs(process.create_time() - identity["created"]) < 0.01
        return process if same and process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def stop_leftovers(run_dir: Path, grace_seconds: float = 5.0) -> list[str]:
    """End the recorded Ray processes of a run whose driver is gone; the names of those it ended.

    UsageError while the run's driver still runs (those processes are its own)."""
    import psutil

    path = Path(run_dir) / RAY_PROCESSES_FILE
    if not path.is_file():
        return []
    recorded = json.loads(path.read_text())
    driver = recorded.get("driver") or {}
    if driver and _alive(driver) is not None:
        raise UsageError(f"the run's driver is still running (pid {driver['pid']}): stop it first "
                         f"(Ctrl-C), or let it finish")
    left = [p for p in (_alive(i) for i in recorded.get("processes", [])) if p is not None]
    names = []
    for process in left:
        try:
            names.append(f"{process.name()} (pid {process.pid})")
            process.terminate()
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(left, timeout=grace_seconds)
    for process in still:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(still, timeout=grace_seconds)
    return names
