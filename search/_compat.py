"""Every reach into Ray's or Optuna's private or version-specific internals, one shim each.

Each says which pinned version it serves and what public API would replace it; tests/test_compat.py
fails loudly when a pinned release moves one.
"""

from __future__ import annotations

import json


def autoscaler_node_types() -> dict[str, str] | None:
    """node id -> node type, as the cluster's autoscaler monitor last reported it; None without a report.

    ray==2.60.0: the monitor writes its status to GCS internal KV under DEBUG_AUTOSCALING_STATUS (what
    `ray status` reads). A cluster that cannot launch nodes (`ray start` by hand, a local instance) runs
    a read-only provider whose node types are named after the node ids (`node_<id>`); an autoscaler launching from a
    config names its types (`gpu_worker`). No public API says whether an autoscaler could add nodes.
    """
    from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

    if not _internal_kv_initialized():
        return None
    status = _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
    if not status:
        return None
    report = json.loads(status).get("autoscaler_report") or {}
    return dict(report.get("node_type_mapping") or {})
