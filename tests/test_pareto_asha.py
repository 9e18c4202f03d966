"""Promotion decisions of the Pareto-aware ASHA scheduler on hand-made rungs, and its saved state."""

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from search import ParetoASHA, crowding_distance, non_domination_ranks

CONTINUE, STOP, PAUSE = TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.PAUSE


def _trial(trial_id):
    return Trial("__fake", stub=True, trial_id=trial_id)


def _report(scheduler, trial_id, accuracy, params, epoch=1):
    return scheduler.on_trial_result(None, _trial(trial_id), {"accuracy": accuracy, "trainable_params": params,
                                                              "epoch": epoch})


def test_rungs():
    assert ParetoASHA("accuracy", max_t=9, grace_period=1, reduction_factor=3).milestones == (1, 3)
    assert ParetoASHA("accuracy", max_t=3).milestones == (1,)


def test_the_grace_period_sets_the_first_rung():
    from search import make_scheduler

    assert make_scheduler("pareto-asha", "accuracy", 9, grace_period=2).milestones == (2, 6)
    assert make_scheduler("pareto-asha", "accuracy", 3, grace_period=2).milestones == (2,)
    # at or beyond the full budget: no rung, nothing stopped early
    none = make_scheduler("pareto-asha", "accuracy", 3, grace_period=5)
    assert none.milestones == () and _report(none, "t", 0.5, 10, epoch=1) == CONTINUE
    with pytest.raises(ValueError, match="grace_period"):
        ParetoASHA("accuracy", max_t=3, grace_period=0)


def test_dominated_trial_stops_cheap_non_dominated_one_continues():
    s = ParetoASHA("accuracy", max_t=3, reduction_factor=3, second_chance=False)
    assert _report(s, "full", 0.80, 22_000_000) == CONTINUE  # first at the rung
    assert _report(s, "layernorm", 0.58, 10_000) == CONTINUE  # worse metric, but the cheapest: an end of the front
    assert _report(s, "dominated", 0.57, 900_000) == STOP  # worse and dearer than layernorm
    assert _report(s, "head", 0.56, 770) == CONTINUE  # new cheapest
    # n=5, keep ceil(5/3)=2: a middle point of the front loses to the two ends...
    assert _report(s, "middle", 0.70, 1_000_000) == STOP
    # ...while the best metric so far always goes on, whatever it costs
    assert _report(s, "best", 0.85, 22_000_000) == CONTINUE
    # front 0 ends (head, best) first, then its middle by crowding; dominated ones last
    assert s.order(1)[:2] == ["head", "best"] and s.order(1)[-1] in {"full", "dominated"}


def test_metric_only_asha_would_stop_the_cheap_trial():
    """The same rung under plain ASHA: the cheap trial is below the metric cutoff and stops."""
    from ray.tune.schedulers import ASHAScheduler

    asha = ASHAScheduler(metric="accuracy", mode="max", time_attr="epoch", max_t=3, grace_period=1)
    for trial_id, accuracy in [("full", 0.80), ("a", 0.75), ("b", 0.78)]:
        asha.on_trial_add(None, _trial(trial_id))
        asha.on_trial_result(None, _trial(trial_id), {"accuracy": accuracy, "epoch": 1, "training_iteration": 1})
    asha.on_trial_add(None, _trial("cheap"))
    assert asha.on_trial_result(None, _trial("cheap"), {"accuracy": 0.6, "epoch": 1, "training_iteration": 1}) == STOP
    pareto = ParetoASHA("accuracy", max_t=3, second_chance=False)
    for trial_id, accuracy, params in [("full", 0.80, 2e7), ("a", 0.75, 2e7), ("b", 0.78, 2e7)]:
        _report(pareto, trial_id, accuracy, params)
    assert _report(pareto, "cheap", 0.6, 770) == CONTINUE


def test_full_budget_stops_and_repeats_are_not_recounted():
    s = ParetoASHA("accuracy", max_t=3, second_chance=False)
    assert _report(s, "a", 0.7, 100) == CONTINUE
    assert _report(s, "a", 0.7, 100) == CONTINUE  # a retried epoch is not a second entry
    assert len(s.rungs[1]) == 1
    assert _report(s, "a", 0.8, 100, epoch=2) == CONTINUE  # between rungs
    assert _report(s, "a", 0.8, 100, epoch=3) == STOP  # full budget


def test_minimised_metric():
    s = ParetoASHA("loss", mode="min", max_t=3, second_chance=False)
    s.on_trial_result(None, _trial("a"), {"loss": 0.2, "trainable_params": 1e6, "epoch": 1})
    s.on_trial_result(None, _trial("b"), {"loss": 0.1, "trainable_params": 1e6, "epoch": 1})
    assert s.on_trial_result(None, _trial("c"), {"loss": 0.3, "trainable_params": 1e6, "epoch": 1}) == STOP


def test_state_survives_a_restore(tmp_path):
    import pickle

    path = str(tmp_path / "state.json")
    s = ParetoASHA("accuracy", max_t=3, state_path=path, second_chance=False)
    blank = pickle.dumps(s)  # what Tuner.restore gets back: the scheduler as pickled at the start
    _report(s, "full", 0.80, 2e7)
    _report(s, "cheap", 0.60, 770)
    restored = pickle.loads(blank)
    assert restored.rungs[1] == {}
    assert _report(restored, "dominated", 0.55, 1e6) == STOP  # judged against the saved rung
    assert set(restored.rungs[1]) == {"full", "cheap", "dominated"}


def test_a_trial_below_the_cut_is_paused_and_promoted_once_it_ranks_within_the_cut():
    """ASHA's promotion rule: judged on arrival against few, a trial gets its chance as the rung fills."""
    s = ParetoASHA("accuracy", max_t=3)  # second chance: the default
    assert _report(s, "a", 0.80, 1000) == CONTINUE
    assert _report(s, "b", 0.70, 1000) == PAUSE  # n=2, keep 1: below the cut, paused (not stopped)
    assert s.promotions(["b"]) == []
    assert _report(s, "c", 0.60, 1000) == PAUSE
    assert s.promotions(["b", "c"]) == []  # n=3, keep 1: still only "a"
    assert _report(s, "d", 0.50, 1000) == PAUSE
    assert s.promotions(["b", "c", "d"]) == ["b"]  # n=4, keep 2: "b" now ranks second
    assert _report(s, "b", 0.72, 1000, epoch=2) == CONTINUE  # resumed: its next epoch is no new entry
    assert len(s.rungs[1]) == 4
    s.second_chance = False
    assert _report(s, "e", 0.40, 1000) == STOP  # without a second chance the same rule stops it


def test_promotions_go_highest_rung_first_and_survive_a_restore(tmp_path):
    import pickle

    path = str(tmp_path / "state.json")
    s = ParetoASHA("accuracy", max_t=9, state_path=path)  # rungs 1 and 3
    blank = pickle.dumps(s)
    for trial_id, accuracy in [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]:
        _report(s, trial_id, accuracy, 1000)
    assert _report(s, "a", 0.91, 1000, epoch=3) == CONTINUE
    assert _report(s, "x", 0.95, 1000, epoch=1) == CONTINUE  # "x" went on past rung 1...
    assert _report(s, "x", 0.80, 1000, epoch=3) == PAUSE  # ...and fell below the cut at rung 3
    for trial_id, accuracy in [("y", 0.5), ("z", 0.4)]:
        _report(s, trial_id, accuracy, 1000)
        _report(s, trial_id, accuracy, 1000, epoch=3)
    # rung 3: a, x, y, z (keep 2: a, x); rung 1: x, a, b, c, d, y, z (keep 3: x, a, b)
    assert s.promotions(["b", "c", "x"]) == ["x", "b"]
    restored = pickle.loads(blank)  # which trials are paused, Ray says; the rungs come from the file
    assert restored.promotions(["b", "c", "x"]) == []  # nothing loaded yet: loading happens at Ray's hooks
    restored._load_once()
    assert restored.promotions(["b", "c", "x"]) == ["x", "b"]
    # --resume: Ray requeues every unfinished trial as PENDING; those this scheduler paused stay paused
    again = pickle.loads(blank)
    requeued = {t: _trial(t) for t in ("b", "x", "y", "new")}
    for trial in requeued.values():
        again.on_trial_add(None, trial)
    assert {t: trial.status for t, trial in requeued.items()} == {
        "b": Trial.PAUSED, "x": Trial.PAUSED, "y": Trial.PAUSED, "new": Trial.PENDING}


def test_ranks_and_crowding():
    losses = [[-0.8, 6], [-0.7, 3], [-0.6, 5.7], [-0.75, 6.3]]  # (-accuracy, log10 params)
    assert non_domination_ranks(losses).tolist() == [0, 0, 1, 1]
    distance = crowding_distance([[-0.6, 1], [-0.7, 2], [-0.8, 3]])
    assert distance[0] == distance[2] == float("inf") and distance[1] == pytest.approx(2.0)


def test_validation_loss_breaks_metric_ties():
    """Early on every small sub-network predicts the majority class: the loss tells them apart."""
    s = ParetoASHA("accuracy", max_t=3, second_chance=False)

    def report(trial_id, params, loss):
        return s.on_trial_result(None, _trial(trial_id), {"accuracy": 0.57, "trainable_params": params,
                                                          "epoch": 1, "eval_loss": loss})

    assert report("head", 770, 0.690) == CONTINUE
    assert report("layernorm", 10_754, 0.650) == CONTINUE  # same accuracy, but learning: not dominated
    assert report("stuck", 26_882, 0.695) == STOP  # same accuracy, dearer and no better loss than head
    # on accuracy alone head dominates it
    without = ParetoASHA("accuracy", max_t=3, tie_breaker=None, second_chance=False)
    _report(without, "head", 0.57, 770)
    assert _report(without, "layernorm", 0.57, 10_754) == STOP


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', not 'best'"):
        ParetoASHA("accuracy", mode="best")
    with pytest.raises(ValueError, match="need 1 <= grace_period <= max_t"):
        ParetoASHA("accuracy", max_t=1, grace_period=2)
    with pytest.raises(ValueError, match="reduction_factor must be greater than 1"):
        ParetoASHA("accuracy", reduction_factor=1)


def test_reference_points_are_recorded_but_never_stopped():
    s = ParetoASHA("accuracy", max_t=3, protect_key="preset", second_chance=False)
    _report(s, "best", 0.80, 1e3)
    protected = Trial("__fake", stub=True, trial_id="bitfit", config={"preset": "bitfit"})
    result = {"accuracy": 0.5, "trainable_params": 1e5, "epoch": 1}
    assert s.on_trial_result(None, protected, result) == CONTINUE  # dominated, but an anchor
    assert "bitfit" in s.rungs[1]
    assert _report(s, "other", 0.5, 1e5) == STOP  # the same values without the label stop


def test_a_real_search_stops_a_dominated_sub_network_and_optuna_records_it_pruned(
        ray_session, tiny_bert, text_csv, tmp_path):
    """End to end: `python -m search.run` with the default scheduler, replayed curves (no training) in
    which the metric is unrelated to size, so many proposals are dominated after their first epoch."""
    import itertools

    import numpy as np
    import optuna
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from search import OPTUNA_JOURNAL_FILE, TRIALS_FILE, run
    from spaces import SpaceConfig, SubnetworkSpace, load_taxonomy, refs_from_switches

    modules = ("query", "value", "attn.norm", "ffn.norm")
    whole = ("off", "bias", "all")  # the synthetic table's switch values (search.run's default adds LoRA)
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2), SpaceConfig(modules=modules, values=whole))
    rng = np.random.default_rng(0)
    rows = []
    for values in itertools.product(space.config.values, repeat=len(space.switch_units)):
        units = refs_from_switches(space.switch_units, dict(zip(space.switch_units, values)))
        quality = rng.uniform(0.55, 0.85)
        rows += [{"units": units, "epoch": e, "metric": quality - 0.02 * (3 - e), "epoch_seconds": 1.0}
                 for e in (1, 2, 3)]
    table = tmp_path / "table.parquet"
    pq.write_table(pa.Table.from_pylist(rows), table)
    code = run.main(["--model", tiny_bert, "--data", str(text_csv), "--text-column", "review", "--label-column",
                     "sentiment", "--modules", ",".join(modules), "--switch-values", ",".join(whole),
                     "--replay", str(table), "--results-dir",
                     str(tmp_path), "--name", "pruned", "--train-size", "32", "--eval-size", "16",
                     "--num-samples", "12", "--sampler", "random", "--no-reference-points",
                     "--grace-period", "1"])  # 32 rows are 1 step an epoch: auto would put the first rung beyond 3
    assert code == 0
    trials = pd.read_parquet(tmp_path / "pruned" / TRIALS_FILE)
    finals = trials[trials["final"]]
    stopped = finals[finals["status"] == "stopped"]
    assert len(stopped) >= 1 and stopped["preset"].isna().all() and (stopped["epoch"] < 3).all()

    # The second chance, in a real Tuner: the trials Pareto-ASHA judged below the cut on arrival were paused;
    # once the rung had filled, those ranking within its cut were resumed; the rest were stopped at the end.
    import json

    from search import SCHEDULER_STATE_FILE
    state = json.loads((tmp_path / "pruned" / SCHEDULER_STATE_FILE).read_text())
    arrivals = list(state["rungs"]["1"].items())
    judge, below = ParetoASHA("accuracy", max_t=3), set()
    for trial_id, values in arrivals:
        judge.rungs[1][trial_id] = tuple(values)
        if judge.decide(1, trial_id) == STOP:
            below.add(trial_id)
    last_epoch = trials.groupby("trial_id")["epoch"].max()
    promoted = {t for t in below if last_epoch[t] > 1}
    assert promoted and set(stopped["trial_id"]) == below - promoted
    assert judge.promotions(list(stopped["trial_id"])) == []  # none left behind that ranks within the cut

    journal = JournalStorage(JournalFileBackend(str(tmp_path / "pruned" / OPTUNA_JOURNAL_FILE)))
    study = optuna.load_study(study_name="pruned", storage=journal)
    states = [t.state for t in study.trials]  # repeats of a proposal are told what it got: counts are at least
    assert states.count(optuna.trial.TrialState.PRUNED) >= len(stopped)
    complete = {round(t.values[0], 9) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == {round(m, 9) for m in finals.loc[finals["status"] == "completed", "metric"]}
