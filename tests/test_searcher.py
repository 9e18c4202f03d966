"""The searcher tells Optuna the truth: early-stopped trials are PRUNED, not COMPLETE with partial values."""

import shutil

import optuna
from optuna.trial import TrialState

from search import ParetoOptunaSearch
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
    trials = searcher.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert trials[0].values == [0.8, 100]
    assert trials[1].values is None  # partial values never reach the study
    assert searcher.study.best_trials == [trials[0]]


def test_a_paused_trial_is_pruned_at_once_and_its_values_join_the_study_if_it_finishes(tiny_bert):
    """Pareto-ASHA's second chance: the sampler hears PRUNED when a trial is paused; a promoted trial that
    reaches the full budget is added as a trial of its own with its values; one stopped at the end adds nothing."""
    searcher = _searcher(tiny_bert)
    for trial_id in ("promoted", "left"):
        searcher.suggest(trial_id)
    searcher.on_trial_paused("promoted")
    searcher.on_trial_paused("left")
    assert [t.state for t in searcher.study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    searcher.on_trial_complete("promoted", {"accuracy": 0.9, "trainable_params": 50, "epoch": 3})
    searcher.on_trial_complete("left")  # stopped while paused, at the end of the search
    trials = searcher.study.trials
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[2].values == [0.9, 50] and trials[2].params == trials[0].params
    assert searcher.study.best_trials == [trials[2]]
    # a later proposal of the promoted sub-network is answered from its full-budget values, not trained
    assert searcher._outcome[searcher._key_of["promoted"]] == (TrialState.COMPLETE, [0.9, 50])


def test_a_spent_trial_seconds_budget_ends_the_proposals(tiny_bert):
    from ray.tune.search import Searcher

    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    searcher = ParetoOptunaSearch(
        space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3, trial_seconds=10.0)
    assert isinstance(searcher.suggest("a"), dict) and isinstance(searcher.suggest("b"), dict)
    searcher.on_trial_result("a", {"accuracy": 0.6, "trainable_params": 10, "epoch": 1, "epoch_seconds": 6.0})
    assert not searcher.budget_spent and isinstance(searcher.suggest("c"), dict)
    searcher.on_trial_result("b", {"accuracy": 0.6, "trainable_params": 10, "epoch": 1, "epoch_seconds": 4.5})
    assert searcher.budget_spent and searcher.spent_seconds == 10.5
    assert searcher.suggest("d") == Searcher.FINISHED
    # running trials still report and finish as usual; a result seen twice (a trial's last, which Ray passes
    # to on_trial_complete, or an epoch a retried trial reports again) is counted once
    searcher.on_trial_result("b", {"accuracy": 0.6, "trainable_params": 10, "epoch": 1, "epoch_seconds": 4.5})
    searcher.on_trial_complete("a", {"accuracy": 0.7, "trainable_params": 10, "epoch": 3, "epoch_seconds": 2.0})
    assert searcher.study.trials[0].state == TrialState.COMPLETE and searcher.spent_seconds == 12.5
    searcher.on_trial_result("c", {"accuracy": 0.6, "trainable_params": 10, "epoch": 1, "epoch_seconds": 1.0})
    searcher.on_trial_complete("c", {"accuracy": 0.6, "trainable_params": 10, "epoch": 1, "epoch_seconds": 1.0})
    assert searcher.spent_seconds == 13.5


def test_every_kth_proposal_fills_the_widest_gap_of_the_front(tiny_bert):
    from spaces import refs_from_switches

    taxonomy = load_taxonomy(tiny_bert, 2)
    space = SubnetworkSpace(taxonomy)
    searcher = ParetoOptunaSearch(
        space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3, fill_gaps=2, gap_point=space.gap_point)
    full = taxonomy.count(refs_from_switches(space.switch_units, {n: "all" for n in space.switch_units}))
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"accuracy": 0.6, "trainable_params": taxonomy.head_params, "epoch": 3})
    searcher.suggest("b")  # the 2nd proposal: one finished trial is no front with a gap yet
    assert searcher.gap_proposals == 0
    searcher.on_trial_complete("b", {"accuracy": 0.9, "trainable_params": full, "epoch": 3})
    searcher.suggest("c")  # the 3rd: not a multiple of 2
    for k in range(2):
        config = searcher.suggest(f"gap{k}")  # every 2nd: inside the one gap, head only .. full
        assert taxonomy.head_params < config["trainable_params"] < full
        searcher.suggest(f"other{k}")
    assert searcher.gap_proposals == 2


def test_the_widest_gap_is_found_among_the_front_alone_and_only_the_front_is_kept(tiny_bert):
    """A full-budget trial off the front never returns to it: the gap search keeps only the front (its cost no
    longer grows with the search), and finds the same gap as over every trial."""
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    searcher = ParetoOptunaSearch(
        space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3, fill_gaps=2, gap_point=space.gap_point)
    front = [(0.6, 10.0), (0.7, 50.0), (0.9, 5000.0), (0.9, 5000.0)]  # the widest gap: 50 .. 5,000
    dominated = [(0.5, 20.0), (0.65, 60.0), (0.8, 8000.0), (0.6, 10.0 ** 4)]
    searcher._finals = dominated[:2] + front + dominated[2:]
    assert searcher._widest_gap() == (50.0, 5000.0)
    assert searcher._finals == front  # duplicates on the front stay
    searcher._finals.append((0.75, 100.0))  # a new front point splits the gap
    assert searcher._widest_gap() == (100.0, 5000.0) and len(searcher._finals) == 5


def test_reference_points_are_suggested_first(tiny_bert):
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    seeds = space.seed_points()
    assert {"full", "head", "bitfit", "layernorm"} <= set(seeds)  # the loop below has the paper's points to check
    searcher = _searcher(tiny_bert, list(seeds.values()))
    for name, point in seeds.items():
        config = searcher.suggest(name)
        assert {k: config[k] for k in point} == point


def test_every_sampler_proposes_valid_sub_networks(tiny_bert):
    from search import SAMPLERS, make_sampler
    from spaces import refs_from_switches

    taxonomy = load_taxonomy(tiny_bert, 2)
    space = SubnetworkSpace(taxonomy)
    assert {"tpe", "nsga2", "random", "gp"} <= set(SAMPLERS)
    for name in SAMPLERS:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(name, 0))
        for i in range(7):  # past every sampler's random startup
            trial = study.ask()
            constants = space(trial)
            # valid: every switch took an offered value, and the units are exactly what those values turn on
            switches = {k: v for k, v in trial.params.items() if k != "lr_scale"}
            assert set(switches) == set(space.switch_units)
            assert all(v in space.values_of[s] for s, v in switches.items()), name
            assert constants["units"] == refs_from_switches(space.switch_units, switches), name
            assert constants["trainable_params"] == taxonomy.count(constants["units"]), name
            assert space.config.lr_scale_min <= trial.params["lr_scale"] <= space.config.lr_scale_max, name
            study.tell(trial, [0.5 + 0.01 * i, constants["trainable_params"]])
        assert len(study.trials) == 7 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials), name


def test_repeats_are_answered_from_what_the_run_measured(tiny_bert):
    from ray.tune.search import Searcher

    from search.steer.searcher import proposal_key
    from spaces import SpaceConfig

    # Two switches, on/off, a fixed learning-rate rule: four sub-networks, so the sampler repeats itself.
    config = SpaceConfig(values=("off", "all"), lr_scale_min=1.0, lr_scale_max=1.0, modules=("query", "key"))
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2), config)
    searcher = ParetoOptunaSearch(space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
                                  sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3)
    first = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"accuracy": 0.75, "trainable_params": first["trainable_params"], "epoch": 3})
    running = {f"t{i}": searcher.suggest(f"t{i}") for i in (1, 2, 3)}
    keys = [proposal_key(c) for c in (first, *running.values())]
    assert len(set(keys)) == 4  # every sub-network once
    assert searcher.suggest("t4") is Searcher.FINISHED  # nothing new is left to propose
    assert searcher.repeats >= 100
    study = searcher.study
    originals = {tid: searcher.optuna_number(tid) for tid in ("t0", "t1", "t2", "t3")}
    params = {tid: study.trials[n].params for tid, n in originals.items()}
    repeats = [t for t in study.trials if t.number not in originals.values()]
    assert len(repeats) == searcher.repeats
    repeats_of_first = [t for t in repeats if t.params == params["t0"]]
    assert repeats_of_first and all(t.values == [0.75, first["trainable_params"]] for t in repeats_of_first)

    # Repeats of a trial still running wait for it, and get what it gets: here PRUNED.
    waiting = [t.number for t in repeats if t.params == params["t1"]]
    assert waiting and all(study.trials[n].state == TrialState.RUNNING for n in waiting)
    searcher.on_trial_complete("t1", {"accuracy": 0.6, "trainable_params": 1, "epoch": 1})
    assert all(study.trials[n].state == TrialState.PRUNED for n in waiting)


def test_saved_state_moves_with_its_run_folder(tiny_bert, tmp_path):
    """A run's searcher state, restored on another machine (or from a moved folder), keeps its study in the
    journal found there; a state saved before the searcher knew about storage restores too."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    first = tmp_path / "head1"
    first.mkdir()
    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    searcher = ParetoOptunaSearch(
        space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"], study_name="moved",
        storage=JournalStorage(JournalFileBackend(str(first / "optuna.journal"))),
        sampler=optuna.samplers.RandomSampler(seed=0), max_epochs=3)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"accuracy": 0.7, "trainable_params": 10, "epoch": 3})
    searcher.suggest("b")
    searcher.save_to_dir(str(first))
    saved = tmp_path / "saved"
    shutil.copytree(first, saved)
    shutil.rmtree(first)  # the first head is gone

    for old_format in (False, True):
        second = tmp_path / f"head2-{old_format}"
        shutil.copytree(saved, second)
        restored = _searcher(tiny_bert)
        restored.relocate(second)
        restored.restore_from_dir(str(second))
        if old_format:  # a state pickled before `store` and `_driver_dir` existed
            del restored.store, restored._driver_dir
            restored.relocate(second)
        restored.on_trial_complete("b", {"accuracy": 0.8, "trainable_params": 20, "epoch": 3})
        assert restored.suggest("c") is not None
        study = optuna.load_study(study_name="moved",
                                  storage=JournalStorage(JournalFileBackend(str(second / "optuna.journal"))))
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]
        assert not first.exists()


def test_the_tpe_sampler_keeps_its_search_space_and_proposes_as_optuna_s_does():
    """search.steer.tpe: the relative search space is computed until a finished trial defines it, then kept; the
    proposals are Optuna's TPE's, trial for trial (with trials left unfinished, as paused ones are)."""
    import optuna

    from search import make_sampler

    def run(sampler):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        proposals = []
        for i in range(30):
            trial = study.ask()
            values = {f"s{k}": trial.suggest_categorical(f"s{k}", ["off", "bias", "all"]) for k in range(4)}
            values["lr_scale"] = trial.suggest_float("lr_scale", 1.0, 3.0, log=True)
            proposals.append(values)
            if i % 5 != 2:  # every fifth trial stays unfinished, as a paused one does
                on = sum(v != "off" for k, v in values.items() if k != "lr_scale")
                study.tell(trial, [on + values["lr_scale"] / 10, on])
        return proposals

    ours = make_sampler("tpe", 3)
    assert type(ours).__name__ == "StaticSpaceTPESampler"
    assert run(ours) == run(optuna.samplers.TPESampler(seed=3, multivariate=True, n_startup_trials=5))
    assert set(ours._kept_space) == {"s0", "s1", "s2", "s3", "lr_scale"}


def _tpe_run(sampler, trials: int, seed: int = 0):
    """A study of `trials` proposals from `sampler` over four three-valued switches and a rate scale; every
    fourth trial PRUNED (stopped early), the rest completed with (metric, size) from a fixed rule plus noise."""
    import numpy as np
    import optuna

    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    proposals = []
    for i in range(trials):
        trial = study.ask()
        values = {f"s{k}": trial.suggest_categorical(f"s{k}", ["off", "bias", "all"]) for k in range(4)}
        values["lr_scale"] = trial.suggest_float("lr_scale", 1.0, 3.0, log=True)
        proposals.append(values)
        on = sum(v != "off" for k, v in values.items() if k != "lr_scale")
        if i % 4 == 3:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [on + values["lr_scale"] / 10 + float(rng.normal(0, 0.3)), on + float(rng.random())])
    return study, proposals


def test_beyond_its_history_the_tpe_sampler_reads_the_best_ranks_and_the_newest_trials():
    """search.steer.tpe: up to `history` finished trials the proposals are Optuna's; beyond, TPE reads a window: every
    trial of the best non-domination ranks (at least a tenth of `history`) and the newest finished ones."""
    import numpy as np
    import optuna

    from search import compat, make_sampler

    history = 40
    ours, theirs = make_sampler("tpe", 5, history=history), optuna.samplers.TPESampler(
        seed=5, multivariate=True, n_startup_trials=5)
    study, mine = _tpe_run(ours, 70)
    _, optunas = _tpe_run(theirs, 70)
    assert mine[: history + 1] == optunas[: history + 1]  # proposal k reads k finished trials
    assert mine != optunas  # beyond, it reads the window

    trials = study.get_trials(deepcopy=False)
    live = ours.window(trials, study.directions)
    # A sampler reading the whole study at once (as a resumed run's does) sorts its best ranks out now; the live
    # one did so at most history/10 completed sub-networks ago, and those since are among its newest.
    assert len(ours._losses) - ours._elite[0] < history // 10
    window = make_sampler("tpe", 5, history=history).window(trials, study.directions)
    assert len(live) == len(window) == history
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) == 70 and len(window) == history
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    losses = np.array([[-t.values[0], t.values[1]] for t in complete])
    ranks = compat.non_domination_ranks(losses)
    cut = np.sort(ranks)[history // 10 - 1]
    elite = {t.number for t, r in zip(complete, ranks) if r <= cut}
    chosen = {t.number for t in window}
    assert elite <= chosen  # the best ranks, whole
    others = [n for n in sorted((t.number for t in finished), reverse=True) if n not in elite]
    assert chosen == elite | set(others[: history - len(elite)])  # and the newest of the rest
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in window)  # the newest, stopped or not
    fresh = make_sampler("tpe", 5, history=history)
    assert fresh.window(trials[:history], study.directions) == trials[:history]  # up to history: all of them


def test_the_window_reads_only_the_trials_not_yet_known_to_have_finished():
    """A proposal does not pay for every trial of a long search: once the window knows that every trial below
    some number has finished, it never reads those trials' states again (only their numbers, to find its
    place), and a trial still running stays in what TPE reads until it finishes."""
    import optuna

    from search import make_sampler

    sampler = make_sampler("tpe", 3, history=20)
    study, _ = _tpe_run(sampler, 40)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # trial 40 failed: it has ended too
    running = study.ask()  # trial 41, still running when 42 and 43 finish
    for _ in range(2):
        study.tell(study.ask(), [1.0, 1.0])
    trials = study.get_trials(deepcopy=False)
    window = sampler.window(trials, study.directions)
    assert sampler._scanned == running.number and trials[running.number] in window

    class Unreadable:  # a trial the window must not read again
        def __init__(self, number):
            self.number = number

        @property
        def state(self):
            raise AssertionError(f"trial {self.number} read again")

    hidden = [Unreadable(t.number) for t in trials[: running.number]] + trials[running.number:]
    assert sampler.window(hidden, study.directions) == window  # the same trials, from what it kept
    complete = sampler.window(hidden, study.directions, (optuna.trial.TrialState.COMPLETE,))
    assert complete and all(t.state == optuna.trial.TrialState.COMPLETE for t in complete)
    assert sampler._scanned == running.number
    study.tell(running, [2.0, 2.0])
    again = sampler.window(study.get_trials(deepcopy=False), study.directions)
    assert sampler._scanned == len(trials) and all(t.state.is_finished() for t in again)
    assert study.get_trials(deepcopy=False)[running.number].state == optuna.trial.TrialState.COMPLETE


def test_the_tpe_sampler_pickles_without_its_caches_and_resumes_as_before():
    """A resumed run's searcher is unpickled: the sampler's kept encodings are not in the pickle, are rebuilt,
    and the proposals go on as if it had never been pickled; a sampler pickled before they existed works."""
    import pickle

    import optuna

    from search import make_sampler

    sampler = make_sampler("tpe", 2, history=30)
    study, _ = _tpe_run(sampler, 45)
    assert sampler._encoded and sampler._losses
    copy = pickle.loads(pickle.dumps(sampler))
    assert not copy._encoded and copy._losses == {} and copy._history == 30
    old = pickle.loads(pickle.dumps(sampler))
    for name in ("_encoded", "_encoded_key", "_losses", "_first", "_history", "_known", "_known_states", "_scanned",
                 "_elite", "_standing", "_kept"):
        old.__dict__.pop(name, None)  # as an earlier version pickled it
    proposed = []
    for s in (sampler, copy, old):
        s._rng.rng.seed(11)
        trial = study.ask()
        frozen = study._storage.get_trial(trial._trial_id)
        proposed.append(s.sample_relative(study, frozen, s.infer_relative_search_space(study, frozen)))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert proposed[0] == proposed[1] and proposed[0] and set(proposed[2]) == set(proposed[0])


def test_the_window_holds_each_sub_network_once_a_completed_trial_before_a_stopped_one():
    """Repeats (answered with the original's values) and a paused sub-network that later completed are read
    once: the window has one trial per configuration, the completed one where there is one."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    from search import make_sampler

    space = {f"s{k}": CategoricalDistribution(["off", "all"]) for k in range(6)}
    trials = []
    for i in range(40):
        params = {f"s{k}": "all" if (i >> k) & 1 else "off" for k in range(6)}
        on = bin(i).count("1")
        values = [0.5 + 0.05 * on - 0.001 * i, float(on)]
        if i % 5 == 0:  # paused (told PRUNED), completed after its second chance
            trials.append(optuna.trial.create_trial(params=params, distributions=space,
                                                    state=optuna.trial.TrialState.PRUNED))
        trials.append(optuna.trial.create_trial(params=params, distributions=space, values=values))
        if i % 3 == 0:  # three repeats of every third sub-network, with the same values
            trials += [optuna.trial.create_trial(params=params, distributions=space, values=values)] * 3
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trials(trials)
    sampler = make_sampler("tpe", 0, history=20)
    window = sampler.window(study.get_trials(deepcopy=False), study.directions)
    configs = [tuple(sorted(t.params.items())) for t in window]
    assert len(configs) == len(set(configs)) == 20
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in window)


def test_the_tpe_sampler_refuses_a_history_too_short_to_learn_from():
    import pytest

    from search import make_sampler

    with pytest.raises(ValueError, match="history"):
        make_sampler("tpe", 0, history=5)


def test_the_search_journal_lists_waiting_trials_as_optuna_s_journal_does(tmp_path):
    """search.steer.journal: once a listing found no WAITING trial, the next ones are answered without reading the
    trials until a point is enqueued again; a journal opened again (pickled, moved) lists them for real."""
    import pickle

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    from search import SearchJournal

    path = str(tmp_path / "optuna.journal")
    storage = SearchJournal(path)
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    plain = JournalStorage(JournalFileBackend(path))  # Optuna's own, on the same file

    def waiting(s) -> list[int]:
        return [t.number for t in s.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,))]

    study.enqueue_trial({"x": 1})
    study.enqueue_trial({"x": 2})
    assert waiting(storage) == waiting(plain) == [0, 1]
    asked = [study.ask(), study.ask(), study.ask()]  # the two enqueued, then a new one
    assert [t.number for t in asked] == [0, 1, 2] and asked[0].params == {} and 0 not in waiting(plain)
    assert waiting(storage) == waiting(plain) == [] and study._study_id in storage._none_waiting
    assert waiting(storage) == []  # answered without reading
    study.enqueue_trial({"x": 3})  # the gap filler's way
    assert waiting(storage) == waiting(plain) == [3] and study.ask().number == 3
    assert waiting(storage) == []
    # Another writer's enqueued trial reaches a journal opened again (a resumed or moved run), not before.
    optuna.load_study(study_name="s", storage=plain).enqueue_trial({"x": 4})
    again = pickle.loads(pickle.dumps(storage))
    assert waiting(again) == [4] and waiting(storage) == []
    # Listings of other states are Optuna's.
    states = (TrialState.RUNNING,)
    assert [t.number for t in storage.get_all_trials(study._study_id, states=states)] == \
        [t.number for t in plain.get_all_trials(study._study_id, states=states)] == [0, 1, 2, 3]


def test_each_proposal_says_where_it_came_from(tiny_bert):
    """Reference points, then TPE's random start while fewer than its startup trials have finished, then its model of
    the results; a filled gap; a random sampler's proposals are all its random draws."""
    from search.steer.strategies import make_sampler

    space = SubnetworkSpace(load_taxonomy(tiny_bert, 2))
    seeds = list(space.seed_points().values())[:2]
    searcher = ParetoOptunaSearch(space=space, metric=["accuracy", "trainable_params"], mode=["max", "min"],
                                  points_to_evaluate=seeds, sampler=make_sampler("tpe", 0), max_epochs=3,
                                  fill_gaps=5, gap_point=space.gap_point)
    origins = []
    for k in range(9):
        config = searcher.suggest(f"t{k}")
        origins.append(config["origin"])
        searcher.on_trial_complete(f"t{k}", {"accuracy": 0.5 + 0.04 * k, "trainable_params": config["trainable_params"],
                                             "epoch": 3})
    # 2 reference points; TPE's 5 startup trials count them: random while fewer than 5 have finished, the 5th
    # proposal fills a gap, and from the 6th (5 finished) TPE proposes from the results
    assert origins == ["reference", "reference", "startup", "startup", "gap", "model", "model", "model", "model"]
    random = _searcher(tiny_bert)
    assert {random.suggest(f"r{k}")["origin"] for k in range(3)} == {"startup"}
