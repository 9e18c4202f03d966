"""The quiet console: Ray's log records and Python's warnings go to the run's log file, unless --verbose."""

import logging
import warnings

import pytest

from search.driver.console import log_note, run_log
from search.storage.files import RUN_LOG


def test_ray_records_and_warnings_go_to_the_run_log_not_the_console(tmp_path, capsys):
    ray_logger = logging.getLogger("ray")
    before = list(ray_logger.handlers)
    with run_log(tmp_path) as path:
        logging.getLogger("ray.tune").warning("the on_trial_result callback took 4.2 s")
        logging.getLogger("ray.tune").info("an info record stays out")
        warnings.warn("a deprecated argument", FutureWarning, stacklevel=1)
    assert path == tmp_path / RUN_LOG
    written = path.read_text()
    assert "WARNING ray.tune: the on_trial_result callback took 4.2 s" in written
    assert "FutureWarning: a deprecated argument" in written and "info record" not in written
    captured = capsys.readouterr()
    assert "callback took" not in captured.err + captured.out and "deprecated" not in captured.err + captured.out
    assert ray_logger.handlers == before  # undone: Ray's own console handler is back
    assert log_note(tmp_path) == f"warnings from Ray and the libraries ({len(written.splitlines())} lines): {path}"


def test_a_run_nothing_warned_in_has_no_log_file_and_no_note(tmp_path):
    with run_log(tmp_path):
        logging.getLogger("ray.tune").info("fine")
    assert not (tmp_path / RUN_LOG).exists() and log_note(tmp_path) is None


def test_verbose_leaves_everything_on_the_console(tmp_path):
    ray_logger = logging.getLogger("ray")
    before = list(ray_logger.handlers)
    with run_log(tmp_path, verbose=True) as path, pytest.warns(UserWarning, match="shown"):
        assert ray_logger.handlers == before  # Ray's console handler stays
        warnings.warn("shown", UserWarning, stacklevel=1)  # Python's own display, not the log
    assert path is None and not (tmp_path / RUN_LOG).exists()
