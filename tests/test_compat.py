"""The few reaches into Ray's internals (search._compat) still work at the pinned versions: loud if one moves."""

import time

from search import _compat


def test_the_autoscaler_report_names_node_types(ray_session):
    deadline = time.monotonic() + 30
    types = _compat.autoscaler_node_types()
    while not types and time.monotonic() < deadline:  # the monitor reports every few seconds
        time.sleep(1)
        types = _compat.autoscaler_node_types()
    # a local Ray reports its read-only provider: one node, whose type is named after its id (it launches none)
    assert types and all(node_type == f"node_{node_id}" for node_id, node_type in types.items())
