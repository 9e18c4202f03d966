"""The few reaches into Ray's internals (search._compat) still work at the pinned versions: loud if one moves."""

from search import _compat


def test_autoscaler_status_is_readable_and_absent_on_a_local_ray(ray_session):
    assert _compat.autoscaler_status() is None  # the suite's local Ray has no autoscaler
