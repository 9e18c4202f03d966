"""The README is a short guide that agrees with the commands: every command line it shows parses, every flag it
names is one of the commands' (as their `--help` lists it), every value it gives a flag with choices is one of
them, and the defaults it states are the defaults."""

import re
import shlex
from pathlib import Path

import pytest

from search import RunConfig
from search.settings.options import parse_options
from spaces import UsageError

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
OTHER_FLAGS = {"--test"}  # install.sh's own


def _help_flags(main, capsys, *args) -> set[str]:
    with pytest.raises(SystemExit):
        main([*args, "--help"])
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", capsys.readouterr().out))


@pytest.fixture(scope="module")
def command_lines() -> list[list[str]]:
    """Each `python -m MODULE ...` line of the README's code blocks, as the shell splits it (comments dropped)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if "-m" in words:
                    lines.append(words[words.index("-m") + 1:])
    return lines


def test_the_readme_is_a_guide_of_at_most_150_lines():
    assert len(README.splitlines()) <= 150
    glossary = README.index("## Words used here")
    for word in ("unit", "switch", "ticket", "trial", "reference point", "front", "within noise of full"):
        assert f"| {word} |" in README[glossary:], word


def test_every_search_run_line_parses(command_lines):
    runs = [words[1:] for words in command_lines if words[0] == "search.run"]
    assert len(runs) >= 5
    for argv in runs:
        options, given = parse_options(argv, add_help=False)
        RunConfig.from_options(options, given)  # a bad value or flag would raise UsageError


def test_every_flag_the_readme_names_is_one_of_the_commands(command_lines, capsys):
    from search import export, report, train
    from search.run import main as run_main
    from spaces import describe

    known = (_help_flags(run_main, capsys) | _help_flags(export.main, capsys, "RUN")
             | _help_flags(report.main, capsys, "RUN") | _help_flags(describe.main, capsys, "MODEL")
             | _help_flags(train.main, capsys, "RUN") | OTHER_FLAGS)
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README))
    assert named - known == set()
    own = {"search.run": _help_flags(run_main, capsys), "search.export": _help_flags(export.main, capsys, "RUN"),
           "search.train": _help_flags(train.main, capsys, "RUN"),
           "spaces.describe": _help_flags(describe.main, capsys, "MODEL")}
    for words in command_lines:  # and each command's own flags on its own lines
        module_flags = own.get(words[0])
        if module_flags is not None:
            assert {w for w in words if w.startswith("--")} <= module_flags, words


def test_a_value_given_to_a_flag_with_choices_is_one_of_them():
    choices = {RunConfig.flag(name): RunConfig.option(name).metadata["choices"] for name in RunConfig.fields()
               if RunConfig.option(name).metadata["choices"]}
    found = 0
    for flag, value in re.findall(r"(--[a-z-]+)[ =]([a-z][a-z0-9.-]*)", README):
        if flag in choices:
            assert value in choices[flag], (flag, value)
            found += 1
    assert found >= 3


def test_the_defaults_the_readme_states_are_the_defaults():
    defaults = RunConfig.defaults()
    stated = {
        f"trains {defaults.num_samples} tickets for {defaults.max_epochs} epochs on {defaults.train_size} "
        "training rows": "num_samples, max_epochs, train_size",
        f"compared on {defaults.eval_size:,} validation rows": "eval_size",
        f"once on {defaults.test_size} held-out test rows": "test_size",
        f"(`--scheduler {defaults.scheduler}`)": "scheduler",
        f"(`--grace-period {defaults.grace_period}`)": "grace_period",
        "`--granularity` says what a switch covers: a module type in every layer "
        f"(`{defaults.granularity}`, the default)": "granularity",
        "`lora" + "`/`lora".join(str(r) for r in defaults.lora_ranks) + "`": "lora_ranks",
    }
    text = " ".join(README.split())
    for sentence, option in stated.items():
        assert sentence in text, option
    with pytest.raises(UsageError):  # and the parser is the one that refuses what is not an option
        parse_options(["--no-such-flag"], add_help=False)
