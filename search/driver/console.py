"""A quiet console: while a run trains, Ray's log records and Python's warnings go to RUN_DIR/run.log.

The console keeps one line per finished trial and the final tables (search.driver.progress, search.driver.finish);
Ray Tune's banner and tables are off at its `verbose=0` with the old output engine (search.run), and
what Ray or a library still has to say (a slow callback, a retried trial, a deprecation) is written to
the run's log file instead of the screen, where it stays with the run. The trial workers' own output still
reaches the console (Ray's log_to_driver), less the traceback a worker prints when Ray stops it at the end of
a search (search.compat.quiet_worker_exits, set by search.driver.trials.init_ray). `--verbose` leaves all of it on
the console.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from search.storage.files import RUN_LOG

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def run_log(run_dir: Path, verbose: bool = False) -> Iterator[Path | None]:
    """Within the block, route the `ray` loggers (WARNING and up) and Python warnings to `run_dir/run.log`
    (created at the first record) instead of the console; the path, or None with `verbose`. Undone on exit."""
    if verbose:
        yield None
        return
    path = Path(run_dir) / RUN_LOG
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(_FORMAT))
    ray_logger, warnings_logger = logging.getLogger("ray"), logging.getLogger("py.warnings")
    original = list(ray_logger.handlers)
    # Ray's console handler (ray._private.log's, a StreamHandler), not handlers others put there (pytest's capture)
    consoles = [h for h in original if type(h).__name__ == "PlainRayHandler" or type(h) is logging.StreamHandler]
    propagates = warnings_logger.propagate
    for console in consoles:
        ray_logger.removeHandler(console)
    ray_logger.addHandler(handler)
    warnings_logger.addHandler(handler)
    warnings_logger.propagate = False
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        warnings_logger.propagate = propagates
        warnings_logger.removeHandler(handler)
        added = [h for h in ray_logger.handlers if h not in original and h is not handler]
        ray_logger.handlers[:] = [*original, *added]  # as they were, in their order
        handler.close()


def log_note(run_dir: Path) -> str | None:
    """The console's pointer to the run's log, when something was written to it."""
    path = Path(run_dir) / RUN_LOG
    if not path.is_file() or path.stat().st_size == 0:
        return None
    lines = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
    return f"warnings from Ray and the libraries ({lines} lines): {path}"
