"""Every reach into Ray's or Optuna's internals (search.compat) still works at the pinned versions.

Each test exercises one shim against the real library, so a release that moves an internal fails
here, by name, instead of in the middle of a search.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from search import compat


def test_the_autoscaler_report_names_node_types(ray_session):
    deadline = time.monotonic() + 30
    types = compat.autoscaler_node_types()
    while not types and time.monotonic() < deadline:  # the monitor reports every few seconds
        time.sleep(1)
        types = compat.autoscaler_node_types()
    # a local Ray reports its read-only provider: one node, whose type is named after its id (it launches none)
    assert types and all(node_type == f"node_{node_id}" for node_id, node_type in types.items())


def test_optunas_front_ranks_and_hypervolume():
    losses = np.array([[0.0, 3.0], [1.0, 1.0], [2.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    assert compat.pareto_front_mask(losses).tolist() == [True, True, False, True, True]
    assert compat.non_domination_ranks(losses).tolist() == [0, 0, 1, 0, 0]
    # by hand, in slices of x: [0,1]x[3,4] + [1,3]x[1,4] + [3,4]x[0,4] = 1 + 6 + 4
    assert compat.hypervolume(losses[[0, 1, 3]], np.array([4.0, 4.0])) == pytest.approx(11.0)


def test_a_journal_study_is_reopened_at_another_path(tmp_path):
    first, moved = tmp_path / "a.journal", tmp_path / "moved" / "a.journal"
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(first))))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert compat.study_journal_path(study) == str(first)
    moved.parent.mkdir()
    moved.write_bytes(first.read_bytes())
    compat.reopen_journal(study, str(moved))
    assert compat.study_journal_path(study) == str(moved)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # written at the new path only
    assert len(optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(moved)))).trials) == 3
    assert len(optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(first)))).trials) == 2
    assert compat.study_journal_path(optuna.create_study()) is None  # in memory: no journal


def test_a_restored_tuner_shows_its_searcher_and_scheduler(ray_session, tmp_path):
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    def trainable(config):
        tune.report({"x": 1})

    tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path), name="t", verbose=0),
               tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(), scheduler=FIFOScheduler())).fit()
    config = compat.restored_tune_config(tune.Tuner.restore(str(tmp_path / "t"), trainable=trainable))
    assert config is not None and isinstance(config.scheduler, FIFOScheduler) and config.search_alg is not None


def test_a_search_that_ran_out_of_proposals_is_saved_finished(ray_session, tmp_path):
    import pyarrow.fs as pafs
    from ray import tune
    from ray.tune.search import Searcher

    class Two(Searcher):  # proposes two trials, then has nothing more
        def __init__(self):
            super().__init__(metric="x", mode="max")
            self.given = 0

        def suggest(self, trial_id):
            self.given += 1
            return {"i": self.given} if self.given <= 2 else Searcher.FINISHED

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    def trainable(config):
        tune.report({"x": config["i"]})

    for name, searcher, samples in (("done", Two(), 10), ("all", Two(), 2)):
        tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
                   tune_config=tune.TuneConfig(search_alg=searcher, num_samples=samples)).fit()
    local = pafs.LocalFileSystem()
    assert compat.search_finished(local, str(tmp_path / "done"))
    assert not compat.search_finished(local, str(tmp_path / "all"))  # it ended on num_samples, never asked for a third
    assert not compat.search_finished(local, str(tmp_path / "nothing-here"))


def test_a_saved_search_generator_is_brought_in_line_with_the_saved_trials(ray_session, tmp_path):
    """A generator state that counts more trials than the experiment state holds (a driver killed between Ray's
    writes), in a run folder that has moved since: the count drops to the saved trials, new trials go to the new
    folder."""
    import json
    import shutil

    import pyarrow.fs as pafs
    import ray.cloudpickle as cloudpickle
    from ray import tune
    from ray.tune.search import Searcher

    class Counter(Searcher):
        def __init__(self):
            super().__init__(metric="x", mode="max")
            self.given = 0

        def suggest(self, trial_id):
            self.given += 1
            return {"i": self.given}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    def trainable(config):
        tune.report({"x": config["i"]})

    tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=Counter(), num_samples=4),
               run_config=tune.RunConfig(storage_path=str(tmp_path / "before"), name="t", verbose=0)).fit()
    run = tmp_path / "after" / "t"
    shutil.copytree(tmp_path / "before" / "t", run)
    shutil.rmtree(tmp_path / "before")
    state_file = max(run.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    state["trial_data"] = state["trial_data"][:2]  # the last trials snapshot was saved before two were made
    state_file.write_text(json.dumps(state))
    generator = max(run.glob("search_gen_state-*.json"))
    assert cloudpickle.loads(generator.read_bytes())["counter"] == 4

    fs = pafs.LocalFileSystem()
    assert compat.align_search_generator(fs, str(run), str(run.parent), "t") == 2
    saved = cloudpickle.loads(generator.read_bytes())
    assert saved["counter"] == 2
    storage = saved["experiment"].spec["storage"]
    assert (storage.storage_fs_path, storage.experiment_dir_name) == (str(run.parent), "t")
    assert compat.align_search_generator(fs, str(run), str(run.parent), "t") == 0  # in line now: left as it is
    assert compat.align_search_generator(fs, str(tmp_path / "nothing-here"), str(tmp_path), "x") == 0


def test_tpe_lists_and_encodes_trials_through_the_hooks():
    """Optuna's TPE still reads the study through `Study._get_trials` and encodes through `_get_internal_repr`
    (a hook that is never called would leave the product's sampler silently reading every trial)."""
    from optuna.samplers import TPESampler

    calls = {"encode": 0, "listing": 0}

    def listing(trials, directions, states):
        calls["listing"] += 1
        return trials if states is None else [t for t in trials if t.state in states]

    class Counted(compat.TPEHooks, TPESampler):
        def encode_params(self, trials, search_space, study):
            calls["encode"] += 1
            return super().encode_params(trials, search_space, study)

        def sample_relative(self, study, trial, search_space):
            return super().sample_relative(compat.study_view(study, listing), trial, search_space)

    def objective(trial):
        return trial.suggest_float("x", 0, 1) + (trial.suggest_categorical("c", ["a", "b"]) == "a")

    ours = optuna.create_study(sampler=Counted(n_startup_trials=3, multivariate=True, seed=0))
    ours.optimize(objective, n_trials=8)
    theirs = optuna.create_study(sampler=TPESampler(n_startup_trials=3, multivariate=True, seed=0))
    theirs.optimize(objective, n_trials=8)
    assert calls["encode"] > 0 and calls["listing"] > 0
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    last = ours.trials[-1]
    assert ours.sampler.relative_params(last, ours) == last.params


def test_ray_optuna_search_keeps_the_state_the_searcher_extends():
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max")
    searcher.suggest("t1")
    for name in compat.OPTUNA_SEARCH_STATE:
        assert hasattr(searcher, name), name
    assert isinstance(searcher._ot_study, optuna.Study) and "t1" in searcher._ot_trials
    state = compat.optuna_search_state(searcher)  # the view is the searcher's own objects
    assert state.study is searcher._ot_study and state.trials is searcher._ot_trials
    assert state.completed is searcher._completed_trials and state.metrics == ["m"]


def test_the_cluster_schema_check_refuses_a_bad_config():
    import jsonschema
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "cluster.yaml").read_text())
    assert compat.validate_cluster_config(config)["cluster_name"] == config["cluster_name"]
    with pytest.raises(jsonschema.ValidationError, match="max_workers"):
        compat.validate_cluster_config({**config, "max_workers": "many"})


def test_a_paused_trial_stopped_by_a_scheduler_is_saved_terminated(ray_session, tmp_path, monkeypatch):
    from ray import tune
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class PauseThenStop(FIFOScheduler):
        """Pauses every trial after its first result; stops the paused ones once nothing else can run."""

        def on_trial_result(self, tune_controller, trial, result):
            return TrialScheduler.PAUSE

        def choose_trial_to_run(self, tune_controller):
            trials = tune_controller.get_trials()
            pending = [t for t in trials if t.status == Trial.PENDING]
            if pending:
                return pending[0]
            if tune_controller.search_alg.is_finished() and not any(t.status == Trial.RUNNING for t in trials):
                for t in trials:
                    if t.status == Trial.PAUSED:
                        compat.stop_paused_trial(tune_controller, t)
            return None

    def trainable(config):
        for step in range(3):
            with tempfile.TemporaryDirectory() as folder:
                tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(folder))

    # a snapshot at every step: the one taken while the trials are paused records them PAUSED
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")
    tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
               run_config=tune.RunConfig(storage_path=str(tmp_path), name="p", verbose=0),
               tune_config=tune.TuneConfig(scheduler=PauseThenStop())).fit()
    saved = tune.ExperimentAnalysis(str(tmp_path / "p")).trials
    assert len(saved) == 2 and {t.status for t in saved} == {"TERMINATED"}
    assert all(t.last_result["step"] == 0 for t in saved)  # paused after one result, never resumed


def test_the_public_api_is_named_typed_and_documented():
    """search.__all__ is what users and bench/ call; each callable says what it does; the TYPE_CHECKING block
    imports exactly those names (what editors see is what loads)."""
    import ast
    import inspect

    import search

    assert 30 <= len(search.__all__) <= 45 and "load_ticket" in search.__all__ and "init_ray" not in search.__all__
    assert search.__all__ == sorted(name for names in search._EXPORTS.values() for name in names)
    for name in search.__all__:
        value = getattr(search, name)
        if callable(value):
            assert inspect.getdoc(value), f"search.{name} has no docstring"
    tree = ast.parse(Path(search.__file__).read_text())
    typed = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.If)
             for sub in node.body if isinstance(sub, ast.ImportFrom) for alias in sub.names}
    assert typed == set(search.__all__)


NOISE = ("Exception ignored in: <function WeakSet.__init__.<locals>._remove at 0x7f75dc5d65c0>\n"
         "Traceback (most recent call last):\n"
         '  File "/x/lib/python3.11/_weakrefset.py", line 39, in _remove\n'
         "    def _remove(item, selfref=ref(self)):\n"
         "\n"
         '  File "/x/ray/_private/worker.py", line 1063, in sigterm_handler\n'
         "    raise_sys_exit_with_custom_error_message(\n"
         '  File "python/ray/_raylet.pyx", line 712, in ray._raylet.raise_sys_exit_with_custom_error_message\n'
         "SystemExit: 1")


def test_the_traceback_of_a_worker_ray_stopped_is_dropped_and_nothing_else():
    lines = ["epoch 1 done", *NOISE.split("\n"), "epoch 2 done"]
    assert compat.without_sigterm_noise(lines) == ["epoch 1 done", "epoch 2 done"]
    other = ["Exception ignored in: <function f>", "Traceback (most recent call last):", "ValueError: x",
             "SystemExit: 1"]  # no sigterm_handler: a different exception, kept
    assert compat.without_sigterm_noise(other) == other
    assert compat.without_sigterm_noise(["Exception ignored in: x", "  File y"]) == ["Exception ignored in: x",
                                                                                      "  File y"]  # cut short: kept


@pytest.mark.integration
def test_a_driver_prints_worker_output_without_the_sigterm_traceback(tmp_path):
    """Through Ray's own printer of worker output (log_to_driver), in a driver process of its own."""
    import os
    import subprocess
    import sys

    script = tmp_path / "driver.py"
    script.write_text(f'''
import sys, time, ray
from search.compat import quiet_worker_exits
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=True)
assert quiet_worker_exits() and quiet_worker_exits()  # found, and installed once

@ray.remote
def trial():
    print({NOISE!r}, file=sys.stderr, flush=True)
    print("a trial's own line", file=sys.stderr, flush=True)

ray.get(trial.remote())
time.sleep(3)  # the log monitor forwards worker output every few hundred ms
ray.shutdown()
''')
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root), "RAY_AUTH_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a trial's own line" in done.stderr
    assert "sigterm_handler" not in done.stderr and "SystemExit" not in done.stderr


def test_ray_s_console_handler_is_found_by_its_name():
    import logging

    import ray  # noqa: F401  (configures the "ray" logger)

    handlers = logging.getLogger("ray").handlers
    assert any(type(h).__name__ == compat.RAY_CONSOLE_HANDLER for h in handlers), [type(h) for h in handlers]
    assert compat.ray_console_handlers(handlers) and not compat.ray_console_handlers([logging.NullHandler()])

