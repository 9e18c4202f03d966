"""A quiet console: while a run trains, Ray's log records and Python's warnings go to RUN_DIR/run.log.

The console keeps one line per finished trial and the final tables (`Progress` below, search.driver.finish);
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
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ray.tune import Callback

from search import compat
from search.steer.pareto import hypervolume, pareto_mask
from search.storage.files import RUN_LOG
from trainables import FAILED

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
    consoles = compat.ray_console_handlers(original)  # not handlers others put there (pytest's capture)
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


# -- the live line: one line whenever a trial ends ---------------------------------------------------
def _short(n: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


class Progress(Callback):
    """Prints one line whenever a trial ends: counts, best metric, and the current frontier's ends."""

    def __init__(self, metric: str, max_epochs: int, total_trials: int, reference=None, stream=None,
                 trial_seconds: float | None = None):
        self.metric = metric
        self.trial_seconds = trial_seconds  # a compute budget: progress is the share of it spent
        self.spent = 0.0
        self.reference = reference  # (majority metric, log10 all params): for the hypervolume so far
        self.max_epochs = max_epochs
        self.total_trials = total_trials
        self.stream = stream
        self.started = time.monotonic()
        self.finished: dict[str, tuple[float, int]] = {}
        self.stopped = 0
        self.errored = 0
        self._ended: set[str] = set()

    def __setstate__(self, state: dict) -> None:
        """Unpickled with a restored run: its times count from this process's start, not the old one's clock."""
        self.__dict__.update(state)
        self.started = time.monotonic()

    def _print(self, trials) -> None:
        running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in self._ended)
        ended = len(self.finished) + self.stopped + self.errored
        elapsed = time.monotonic() - self.started
        if self.trial_seconds:
            share = min(self.spent / self.trial_seconds, 1.0)
            remaining = elapsed / share * (1 - share) if share else float("nan")
            done = f"{ended} trials ended, {self.spent:,.0f} of {self.trial_seconds:,.0f} trial-seconds spent "
        else:
            remaining = elapsed / ended * (self.total_trials - ended) if ended else float("nan")
            done = f"{ended}/{self.total_trials} trials ended "
        line = (f"[{elapsed:6.0f}s, ~{remaining:.0f}s left] {done}"
                f"({len(self.finished)} full budget, {self.stopped} stopped early, {self.errored} failed), "
                f"{running} running")
        paused = sum(1 for t in trials if t.status == "PAUSED")
        if paused:  # Pareto-ASHA's second chance: below its rung's cut for now
            line += f", {paused} paused"
        if self.finished:
            values = list(self.finished.values())
            mask = pareto_mask([v[0] for v in values], [v[1] for v in values])
            front = sorted(v for v, on in zip(values, mask) if on)
            best, cheapest = front[-1], front[0]
            line += (f" | best {self.metric} {best[0]:.4f} @ {_short(best[1])} params"
                     f" | frontier {len(front)} pts, cheapest {cheapest[0]:.4f} @ {_short(cheapest[1])}")
            if self.reference is not None:
                volume = hypervolume([v[0] for v in values], [v[1] for v in values], self.reference)
                line += f" | hypervolume {volume:.4f}"
        print(line, file=self.stream or sys.stdout, flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        seconds = result.get("epoch_seconds")
        if isinstance(seconds, (int, float)):
            self.spent += float(seconds)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended.add(trial.trial_id)
        result = trial.last_result or {}
        if FAILED in result:  # ended on a failure a retry cannot fix
            self.errored += 1
        elif result.get("epoch", 0) >= self.max_epochs and self.metric in result:
            self.finished[trial.trial_id] = (result[self.metric], result["trainable_params"])
        else:
            self.stopped += 1
        self._print(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended.add(trial.trial_id)
        self.errored += 1
        self._print(trials)
