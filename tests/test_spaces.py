import json
import random

import numpy as np
import optuna
import pytest
from transformers import AutoModelForSequenceClassification

from spaces import (
    MODULE_TYPES,
    SpaceConfig,
    Spec,
    SubnetworkSpace,
    UsageError,
    gap_selection,
    load_taxonomy,
    presets,
    reference_lr,
    refs_from_switches,
    spread_selections,
    switches,
)


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    return load_taxonomy(tiny_bert, 2)


@pytest.fixture()
def tiny_model(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)


def test_units_of_a_bert(tiny):
    ids = [u.id for u in tiny.units]
    assert ids[:2] == ["embeddings", "embeddings.norm"] and ids[-1] == "pooler"
    assert [u.id for u in tiny.units if u.layer == 1] == [f"1.{m}" for m in MODULE_TYPES]
    assert len(ids) == 2 * len(MODULE_TYPES) + 3
    assert tiny.unassigned == ()  # every body parameter belongs to a unit
    assert tiny.head == ("classifier.weight", "classifier.bias")
    assert tiny.unit("0.ffn.norm").params == (
        "bert.encoder.layer.0.output.LayerNorm.weight", "bert.encoder.layer.0.output.LayerNorm.bias")


def test_counts_equal_requires_grad_after_apply(tiny, tiny_model):
    rng = random.Random(0)
    all_refs = [u.id for u in tiny.units]
    for _ in range(30):
        refs = [r + rng.choice(["", ":bias", ":weight"]) for r in rng.sample(all_refs, rng.randint(0, len(all_refs)))]
        names = tiny.apply(tiny_model, refs)
        assert trainable_count(tiny_model) == tiny.count(refs) == sum(tiny.param_numel[n] for n in names)


def test_head_only_and_full(tiny, tiny_model):
    tiny.apply(tiny_model, [])
    assert trainable_count(tiny_model) == tiny.count([]) == 32 * 2 + 2
    tiny.apply(tiny_model, [u.id for u in tiny.units])
    assert trainable_count(tiny_model) == tiny.total_params == sum(p.numel() for p in tiny_model.parameters())


def test_parts_split_weights_and_biases(tiny):
    assert tiny.count(["0.query:bias"]) - tiny.count([]) == 32
    assert tiny.count(["0.query:weight"]) - tiny.count([]) == 32 * 32
    assert tiny.count(["0.query:bias", "0.query:weight"]) == tiny.count(["0.query"])


def test_minilm_counts_without_loading_weights():
    taxonomy = load_taxonomy("minilm", 2)
    assert taxonomy.total_params == 22_713_986
    assert taxonomy.count([f"{layer}.{m}" for layer in range(6) for m in ("attn.norm", "ffn.norm")]) == 770 + 12 * 768


@pytest.mark.parametrize("ref, message", [
    ("7.query", "unknown unit '7.query'"),
    ("0.querry", "unknown unit '0.querry'"),
    ("0.query:gamma", "unknown part 'gamma'"),
])
def test_bad_references(tiny, ref, message):
    with pytest.raises(UsageError, match=message):
        tiny.count([ref])


def test_unknown_model_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="model folder not found"):
        load_taxonomy(str(tmp_path / "nope"), 2)


def test_switches_by_granularity(tiny):
    module = switches(tiny, "module")
    assert list(module)[:8] == list(MODULE_TYPES) and module["query"] == ("0.query", "1.query")
    assert switches(tiny, "layer")["layer1"] == tuple(f"1.{m}" for m in MODULE_TYPES)
    assert len(switches(tiny, "unit")) == len(tiny.units)
    with pytest.raises(UsageError, match="unknown granularity 'head' \\(use one of module, layer, unit\\)"):
        switches(tiny, "head")


def test_presets_are_the_papers_reference_points(tiny):
    switch_units = switches(tiny, "module")
    points = presets(tiny, "module")
    count = {name: tiny.count(refs_from_switches(switch_units, values)) for name, values in points.items()}
    biases = sum(n for name, n in tiny.param_numel.items() if name.endswith("bias") and name.startswith("bert."))
    assert count["full"] == tiny.total_params
    assert count["head"] == tiny.head_params
    assert count["bitfit"] == tiny.head_params + biases
    assert count["layernorm"] == tiny.head_params + 5 * 2 * 32  # embeddings + 2 per layer
    assert count["ffn.in"] == tiny.head_params + 2 * (32 * 64 + 64)
    assert set(presets(tiny, "layer")) == {"full", "head", "bitfit"}


def test_reference_lr_grows_as_fewer_parameters_train():
    lrs = [reference_lr(n, 10**7) for n in (10**7, 10**5, 10**3, 10)]
    assert lrs == sorted(lrs) and lrs[0] == 1e-4 and lrs[-1] == 5e-3


def test_define_by_run_space_in_a_real_study(tiny):
    space = SubnetworkSpace(tiny, SpaceConfig(granularity="unit"))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        trial = study.ask()
        constants = space(trial)
        assert constants["trainable_params"] == tiny.count(constants["units"])
        assert 0.1 <= trial.params["lr_scale"] <= 10
        expected = trial.params["lr_scale"] * reference_lr(constants["trainable_params"], tiny.total_params)
        assert constants["lr"] == pytest.approx(expected)
        study.tell(trial, [random.random(), constants["trainable_params"]])
    # Optuna's front is the non-dominated set of what was told (metric up, parameters down)
    from search import pareto_mask

    told = study.trials
    mask = pareto_mask([t.values[0] for t in told], [t.values[1] for t in told])
    assert sorted(t.number for t in study.best_trials) == [t.number for t, keep in zip(told, mask) if keep]


def test_seed_points_replay_through_optuna(tiny):
    space = SubnetworkSpace(tiny)
    study = optuna.create_study(directions=["maximize", "minimize"])
    seeds = space.seed_points()
    for point in seeds.values():
        study.enqueue_trial(point)
    for name, point in seeds.items():
        trial = study.ask()
        constants = space(trial)
        assert trial.params == point
        assert constants["units"] == refs_from_switches(space.switch_units, point)
        study.tell(trial, [0.5, constants["trainable_params"]])


def test_spec_round_trip_and_apply(tiny, tiny_model, tmp_path):
    spec = Spec.from_units(tiny, ["1.ffn.norm", "0.value:bias"], metrics={"accuracy": 0.8})
    path = spec.save(tmp_path / "spec.json")
    loaded = Spec.load(path)
    assert loaded == spec
    names = loaded.apply(tiny_model, tiny)
    assert names == spec.parameters
    assert trainable_count(tiny_model) == spec.trainable_params


def test_spec_for_another_model_is_rejected(tiny, tiny_bert_3_layers, tmp_path):
    other = load_taxonomy(tiny_bert_3_layers, 2)
    spec = Spec.from_units(other, ["2.query"])
    with pytest.raises(UsageError, match="fingerprints differ"):
        spec.validate(tiny)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(format="other"), "not a ticketsearch spec"),
    (lambda d: d.update(units=["0.nope"]), "unknown unit"),
    (lambda d: d.update(trainable_params=1), "trainable_params does not match"),
])
def test_bad_specs(tiny, tmp_path, change, message):
    data = json.loads(Spec.from_units(tiny, ["0.query"]).save(tmp_path / "s.json").read_text())
    change(data)
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(UsageError, match=message):
        Spec.load(tmp_path / "s.json").validate(tiny)


def test_space_is_picklable(tiny):
    import pickle

    space = pickle.loads(pickle.dumps(SubnetworkSpace(tiny)))
    # the default: off/bias/all for the eight module types, the embeddings' norm and the pooler; off/all for the
    # bias-free embeddings
    assert space.size() == 3 ** (len(MODULE_TYPES) + 2) * 2
    lora = pickle.loads(pickle.dumps(SubnetworkSpace(tiny, SpaceConfig(values=("off", "bias", "all", "lora")))))
    # with LoRA offered, the six linear module types add LoRA at ranks 2, 8 and 32
    linear = len([m for m in MODULE_TYPES if not m.endswith("norm")])
    assert linear == 6 and lora.size() == 6 ** linear * 3 ** (len(MODULE_TYPES) - linear + 2) * 2
    assert space(optuna.create_study().ask())["trainable_params"] >= tiny.head_params


def test_module_and_layer_constraints(tiny):
    restricted = switches(tiny, "unit", modules=("query", "attn.norm", "pooler"), layers=(1, 1))
    assert list(restricted) == ["1.query", "1.attn.norm", "pooler"]
    with pytest.raises(UsageError, match="unknown module 'querry'"):
        switches(tiny, "module", modules=("querry",))
    with pytest.raises(UsageError, match="outside 0..1"):
        switches(tiny, "module", layers=(0, 2))
    # presets that a restricted space cannot express exactly are left out
    names = set(presets(tiny, "module", modules=("query", "value")))
    assert names == {"head", "query", "value", "beft"}  # BEFT's value biases need nothing else


def test_max_params_is_never_exceeded(tiny):
    budget = tiny.head_params + 2 * (32 * 32 + 32) + 500
    space = SubnetworkSpace(tiny, SpaceConfig(granularity="unit", max_params=budget))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(40):
        trial = study.ask()
        constants = space(trial)
        assert constants["trainable_params"] == tiny.count(constants["units"]) <= budget
        study.tell(trial, [0.5, constants["trainable_params"]])
    assert "full" not in space.seed_points() and "head" in space.seed_points()
    with pytest.raises(UsageError, match="below the head"):
        SubnetworkSpace(tiny, SpaceConfig(max_params=10))


def test_layer_wise_layernorm_presets(tiny):
    unit_presets = presets(tiny, "unit")
    for layer in range(2):
        values = unit_presets[f"layernorm.{layer}"]
        refs = refs_from_switches(switches(tiny, "unit"), values)
        assert refs == [f"{layer}.attn.norm", f"{layer}.ffn.norm"]
    assert "layernorm.0" not in presets(tiny, "module") and "layernorm.0" not in presets(tiny, "layer")


def test_spread_points_cover_the_cost_axis_from_the_counts_alone(tiny):
    space = SubnetworkSpace(tiny, SpaceConfig())
    points = space.spread_points(6, seed=3)
    costs = [tiny.count(refs_from_switches(space.switch_units, p)) for p in points]
    assert costs[0] == tiny.head_params  # the cheapest sub-network: every front's cheap end
    assert costs[1] == tiny.count(refs_from_switches(space.switch_units, {n: "all" for n in space.switch_units}))
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points) and len(points) >= 4
    middle = sorted(costs[2:])
    assert costs[0] < middle[0] and middle[-1] < costs[1]  # in between, spread: no two budgets alike
    assert len(set(middle)) == len(middle)
    assert all(p["lr_scale"] == 1.0 and set(p) == {*space.switch_units, "lr_scale"} for p in points)
    assert space.spread_points(6, seed=3) == points and space.spread_points(6, seed=4) != points
    capped = SubnetworkSpace(tiny, SpaceConfig(max_params=costs[1] // 10))
    assert all(tiny.count(refs_from_switches(capped.switch_units, p)) <= costs[1] // 10
               for p in capped.spread_points(6))


def test_start_points_keep_the_anchors_and_fill_up_with_spread_ones(tiny):
    from spaces import start_points

    space = SubnetworkSpace(tiny, SpaceConfig())
    given = space.seed_points()
    # enough trials: every reference point, nothing spread (there are more than 5)
    assert start_points(space, given, 5, 100) == given
    # a small budget keeps full, head, layernorm and bitfit first
    assert list(start_points(space, given, 5, 4)) == ["full", "head", "bitfit", "layernorm"]
    # no reference points: the spread start, cheapest and largest first, as many as asked
    spread = start_points(space, {}, 3, 100, seed=2)
    assert list(spread) == ["spread-1", "spread-2", "spread-3"]
    assert list(spread.values()) == space.spread_points(3, 2)[:3]
    assert start_points(space, {"head": given["head"]}, 3, 2) == {"head": given["head"],
                                                                 "spread-1": space.spread_points(3)[1]}


def test_the_learning_rate_scale_stays_in_its_range(tiny):
    import optuna

    for low, high in ((1.0, 1.0), (0.5, 2.0)):
        space = SubnetworkSpace(tiny, SpaceConfig(lr_scale_min=low, lr_scale_max=high))
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(20):
            config = space(study.ask())
            assert low <= config["lr_scale"] <= high
            assert config["lr"] == pytest.approx(config["lr_scale"] * reference_lr(config["trainable_params"],
                                                                                   tiny.total_params))
    with pytest.raises(UsageError, match="lr_scale_min <= 1 <= lr_scale_max"):
        SubnetworkSpace(tiny, SpaceConfig(lr_scale_min=2.0, lr_scale_max=5.0))


def test_spread_selections_are_stratified_over_log_budgets():
    names = [f"s{i}" for i in range(12)]
    size = {n: 10 ** (1 + i % 4) for i, n in enumerate(names)}

    def cost(values):
        return 100 + sum(size[n] for n, v in values.items() if v != "off")

    points = spread_selections(names, ("off", "all"), cost, 10, seed=0)
    logs = sorted(np.log10([cost(p) for p in points]))
    assert logs[0] == pytest.approx(2.0) and logs[-1] == pytest.approx(np.log10(cost({n: "all" for n in names})))
    assert np.max(np.diff(logs)) < 1.2  # no decade of budgets left empty (8 strata over ~2.6 decades)
    assert spread_selections(names, ("off", "all"), cost, 0) == []


def test_a_gap_selection_lands_inside_the_gap_from_the_counts_alone(tiny):
    names = [f"s{i}" for i in range(12)]
    size = {n: 10 ** (1 + i % 4) for i, n in enumerate(names)}

    def cost(values):
        return 100 + sum(size[n] for n, v in values.items() if v != "off")

    rng = np.random.default_rng(0)
    for low, high in [(100, 1_000), (1_000, 20_000), (20_000, 40_000)]:
        for _ in range(5):
            assert low < cost(gap_selection(names, ("off", "all"), cost, low, high, rng)) < high
    assert gap_selection(names, ("off", "all"), cost, 100, 110, rng) is None  # nothing costs 101..109
    assert gap_selection(names, ("off", "all"), cost, 500, 400, rng) is None
    # the space's own: within max_params, its switch values, the learning-rate scale left to the sampler
    space = SubnetworkSpace(tiny, SpaceConfig())
    full = tiny.count(refs_from_switches(space.switch_units, {n: "all" for n in space.switch_units}))
    point = space.gap_point(tiny.head_params, full, rng)
    assert set(point) == set(space.switch_units)
    assert tiny.head_params < tiny.count(refs_from_switches(space.switch_units, point)) < full


def test_every_option_a_trial_sees_has_the_command_line_s_default():
    """A run's options reach trials through search.driver.trials.trial_settings; a library user who builds TrialSettings
    directly gets what a default run trains with (runs started before an option existed keep LEGACY_OPTIONS)."""
    import dataclasses

    from search import parse_args
    from trainables import TrialSettings

    args = parse_args([])
    defaults = {f.name: f.default for f in dataclasses.fields(TrialSettings) if f.default is not dataclasses.MISSING}
    for option in ("lr_groups", "batch_size", "seed"):  # the options both have (metric: None means the task's)
        assert defaults[option] == getattr(args, option), option
