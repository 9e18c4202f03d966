"""Every reach into Ray's or Optuna's private or version-specific internals, one shim each.

Each says which pinned version it serves and what public API would replace it; tests/test_compat.py
fails loudly when a pinned release moves one.
"""

from __future__ import annotations


def autoscaler_status() -> bytes | None:
    """The autoscaler's last status report, None when no autoscaler reports to the connected cluster.

    ray==2.60.0: the monitor writes it to GCS internal KV under DEBUG_AUTOSCALING_STATUS (what
    `ray status` reads). No public API says whether an autoscaler could add nodes.
    """
    from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

    if not _internal_kv_initialized():
        return None
    return _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
