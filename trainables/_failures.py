"""Which failures a retry cannot fix, and how a trial ends on one.

Ray Tune retries a failed trial from its last checkpoint (`--max-failures`, default 2). That helps a
trial whose process or node died; it cannot help one that fails the same way every time. A trial is
deterministic given its checkpoint (the checkpoint holds the random state), so a non-finite loss
comes back on every retry, and a sub-network that does not fit the device's memory at this batch
size does not fit on a retry with the same resources. Such a trial ends at once: it reports
`{FAILED: reason}` and returns, and the searcher, the scheduler and the results treat it as failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

FAILED = "failed"  # result key: the reason a trial ended on a deterministic failure
DETERMINISTIC = (FloatingPointError, torch.OutOfMemoryError)


def failure_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500]


@contextmanager
def ends_on_deterministic_failure() -> Iterator[None]:
    """Inside a Ray Tune trainable: a DETERMINISTIC error is reported as the trial's last result, not raised."""
    try:
        yield
    except DETERMINISTIC as exc:
        from ray import tune

        tune.report({FAILED: failure_reason(exc)})
