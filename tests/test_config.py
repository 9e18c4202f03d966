"""One run configuration: built from the command line, from YAML and from a resumed run's run.json (of every
format runs were saved in), frozen, every option with one default."""

import dataclasses
import json
from pathlib import Path

import pytest

from search import RunConfig, parse_args
from search.settings.config import LEGACY_OPTIONS
from search.settings.options import build_parser
from spaces import UsageError

FLAGS = ["--model", "bert-base-uncased", "--task", "sst2", "--granularity", "unit", "--seed", "3",
         "--lr-scale-range", "0.5,2", "--grace-period", "2", "--no-lr-groups", "--trial-seconds", "900",
         "--switch-values", "off,all", "--no-reference-points", "--pooling", "mean"]
YAML = """\
model: bert-base-uncased
task: sst2
granularity: unit
seed: 3
lr-scale-range: "0.5,2"
grace-period: 2
lr_groups: false
trial-seconds: 900
switch-values: off,all
reference_points: false
pooling: mean
"""


def test_its_fields_are_the_command_line_s_options():
    assert set(RunConfig.fields()) == {a.dest for a in build_parser()._actions} - {"help"}


def test_the_command_line_and_yaml_give_the_same_configuration(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(YAML)
    from_flags = parse_args(FLAGS)
    from_yaml = parse_args(["--config", str(config_file)])
    assert from_yaml.replace(config=None) == from_flags
    assert from_flags.grace_period == 2 and from_flags.lr_groups is False and from_flags.lr_scale_range == (0.5, 2.0)
    assert from_flags.num_samples == 100_000  # a compute budget, not a count, ends the search
    # a flag overrides the file
    assert parse_args(["--config", str(config_file), "--seed", "4"]).seed == 4


def test_it_is_frozen_and_replace_leaves_the_original_unchanged():
    config = parse_args([])
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'seed'"):
        config.seed = 1  # type: ignore[misc]
    other = config.replace(seed=1, granularity="layer")
    assert (config.seed, config.granularity) == (0, "module") and (other.seed, other.granularity) == (1, "layer")
    with pytest.raises(UsageError, match="--grace-period must be at least 1 epoch"):
        config.replace(grace_period=0)


def test_bad_values_from_yaml_are_refused_as_flags_are(tmp_path):
    config_file = tmp_path / "run.yaml"
    for text, message in (("grace-period: soon", "--grace-period takes a number of epochs or auto, not 'soon'"),
                          ("lr-scale-range: 2,3", "--lr-scale-range 2,3 must contain 1"),
                          ("trial-seconds: -5", "--trial-seconds must be positive"),
                          ("fill-gaps: -1", "--fill-gaps and --spread-points must not be negative")):
        config_file.write_text(text + "\n")
        with pytest.raises(UsageError, match=message):
            parse_args(["--config", str(config_file)])


def _saved(config: RunConfig) -> dict:
    """The options as a run.json holds them (through JSON, as written)."""
    return json.loads(json.dumps({"args": config.as_dict()}))["args"]


# Each format runs were saved in: the options a run.json of that time did not have yet.
OLDER_FORMATS = {
    "before --lr-scale-range and --grace-period": ("lr_scale_range", "grace_period"),
    "before --spread-points and --fill-gaps": ("lr_scale_range", "grace_period", "spread_points", "fill_gaps"),
    "before --pooling and --lr-groups": ("lr_scale_range", "grace_period", "spread_points", "fill_gaps",
                                         "pooling", "lr_groups"),
}


def test_a_resumed_run_of_this_version_continues_with_exactly_its_options():
    config = parse_args(FLAGS)
    assert RunConfig.from_saved(_saved(config)) == config
    moved = RunConfig.from_saved(_saved(config), results_dir="/elsewhere", resume=None)
    assert moved == config.replace(results_dir="/elsewhere")


@pytest.mark.parametrize("fmt", OLDER_FORMATS)
def test_a_resumed_run_of_an_older_format_keeps_what_it_was_started_with(fmt):
    config = parse_args(["--model", "bert-base-uncased", "--seed", "3", "--granularity", "unit"])
    saved = {k: v for k, v in _saved(config).items() if k not in OLDER_FORMATS[fmt]}
    saved["removed_long_ago"] = 1  # an option since removed is dropped, not an error
    resumed = RunConfig.from_saved(saved)
    for option in RunConfig.fields():
        if option in OLDER_FORMATS[fmt]:  # what runs of that time did, not today's default
            assert getattr(resumed, option) == LEGACY_OPTIONS[option], option
        else:  # what the run saved, the same as the command line gave
            assert getattr(resumed, option) == getattr(config, option), option
    assert resumed.lr_scale_range == (0.1, 10.0) and resumed.grace_period == 1


def test_the_legacy_defaults_are_only_for_options_that_change_what_a_trial_computes():
    defaults = RunConfig.defaults()
    assert set(LEGACY_OPTIONS) <= set(RunConfig.fields())
    assert all(getattr(defaults, k) != v for k, v in LEGACY_OPTIONS.items())  # else they would not be needed


def test_the_benchmark_s_default_strategy_is_search_run_s_defaults():
    from conftest import load_bench

    bench = load_bench("search_efficiency")
    run, default = parse_args([]), bench.STRATEGIES["default"]
    assert (default.sampler, default.scheduler, default.spread, default.fill_gaps, default.grace_period) == (
        run.sampler, run.scheduler, run.spread_points, run.fill_gaps, run.grace_period)
    assert default.lr_range is None and default.sampler_options == {} and default.second_chance
    assert bench.BATCH_SIZE == run.batch_size


def test_what_the_user_set_is_one_set_of_names_from_flags_and_yaml(tmp_path):
    assert parse_args([]).given == frozenset()
    config_file = tmp_path / "run.yaml"
    config_file.write_text("seed: 3\nlora-ranks: [4, 16]\n")
    config = parse_args(["--config", str(config_file), "--lora-ranks", "8,2,32", "--granularity", "module"])
    # a value equal to the default, or the default's ranks in another order, is still the user's choice
    assert config.given == {"config", "seed", "lora_ranks", "granularity"}
    assert config.lora_ranks == (8, 2, 32) and config.seed == 3
    assert parse_args(["--config", str(config_file)]).lora_ranks == (4, 16)  # a YAML list, parsed alike
    assert RunConfig.from_saved(_saved(config)).given == config.given  # and it is saved with the run


def test_values_are_parsed_once_into_the_types_the_code_uses():
    config = parse_args(["--lora-ranks", "4,16", "--layers", "2-4", "--modules", "query,value",
                         "--switch-values", "off,lora", "--lr-scale-range", "0.5,2", "--grace-period", "2"])
    assert (config.lora_ranks, config.layers, config.modules, config.switch_values, config.lr_scale_range,
            config.grace_period) == ((4, 16), (2, 4), ("query", "value"), ("off", "lora"), (0.5, 2.0), 2)
    assert parse_args(["--layers", "3"]).layers == (3, 3)
    assert config.text("layers") == "2-4" and config.text("lora_ranks") == "4,16"
    assert config.replace(lora_ranks="8").lora_ranks == (8,)  # another form is parsed as a flag's would be
    defaults = RunConfig.defaults()
    assert isinstance(defaults.lora_ranks, tuple) and isinstance(defaults.switch_values, tuple)
    with pytest.raises(UsageError, match="--layers takes FIRST-LAST or one layer"):
        parse_args(["--layers", "a-b"])


def test_a_run_saved_before_given_was_kept_resumes_with_what_its_user_had_set():
    old = {**_saved(parse_args([])), "switch_values": None, "lora_ranks": "2,8,32", "lr_scale_range": "1,3"}
    del old["given"]
    resumed = RunConfig.from_saved(old)
    assert resumed.given == frozenset() and resumed == RunConfig.defaults()
    old.update(switch_values="off,bias,all,lora", lora_ranks="4")
    resumed = RunConfig.from_saved(old)
    assert resumed.given == {"switch_values", "lora_ranks"} and resumed.lora_ranks == (4,)


def test_the_options_reference_is_made_from_the_fields_and_is_up_to_date():
    from search.settings.options import options_reference

    reference = (Path(__file__).resolve().parent.parent / "docs" / "options.md").read_text()
    assert reference == options_reference(), "regenerate it: python -m search.settings.options"
    for name in RunConfig.fields():
        assert f"`{RunConfig.flag(name)}" in reference, name
