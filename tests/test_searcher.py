"""The searcher tells Optuna the truth: early-stopped trials are PRUNED, not COMPLETE with partial values."""

import optuna
from optuna.trial import TrialState

from search._searcher import ParetoOptunaSearch
from spaces import SubnetworkSpace, load_taxonomy


def _searcher(tiny_bert, seeds=None):
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    return ParetoOptunaSearch(
        space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
        points_to_evaluate=seeds, sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3,
    )


def test_states_told_to_optuna(tiny_bert):
    searcher = _searcher(tiny_bert)
    configs = {tid: searcher.suggest(tid) for tid in ("full", "cut", "broken")}
    assert all("units" in c and "trainable_params" in c for c in configs.values())
    searcher.on_trial_complete("full", {"accuracy": 0.8, "trainable_params": 100, "epoch": 3})
    searcher.on_trial_complete("cut", {"accuracy": 0.9, "trainable_params": 50, "epoch": 1})
    searcher.on_trial_complete("broken", {"accuracy": 0.7, "trainable_params": 10, "epoch": 3}, error=True)
    trials = searcher._ot_study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert trials[0].values == [0.8, 100]
    assert trials[1].values is None  # partial values never reach the study
    assert searcher._ot_study.best_trials == [trials[0]]


def test_reference_points_are_suggested_first(tiny_bert):
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    seeds = space.seed_points()
    searcher = _searcher(tiny_bert, list(seeds.values()))
    for name, point in seeds.items():
        config = searcher.suggest(name)
        assert {k: config[k] for k in point} == point


def test_every_sampler_proposes_valid_sub_networks(tiny_bert):
    from search._cli import SAMPLERS
    from search.run import _sampler

    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    for name in SAMPLERS:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler(name, 0))
        for i in range(7):  # past every sampler's random startup
            trial = study.ask()
            constants = space(trial)
            study.tell(trial, [0.5 + 0.01 * i, constants["trainable_params"]])
        assert len(study.best_trials) >= 1, name
