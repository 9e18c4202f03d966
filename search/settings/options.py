"""The command line of `python -m search.run`, made from RunConfig's fields, with a YAML config file whose values
flags override; `options_reference()` writes the same table as docs/options.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from search.settings.config import GROUPS, RunConfig, flag_text
from spaces import ArgumentParser, UsageError

__all__ = ["add_run_options", "build_parser", "options_reference", "parse_args", "parse_options",
           "print_help_if_asked"]

DESCRIPTION = ("Search which modules in which layers of a pre-trained transformer (encoder or decoder) to fine-tune: "
               "the Pareto frontier of task metric vs. trainable parameters.")


def build_parser(add_help: bool = True, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """search.run's parser, one argument per RunConfig option. Values stay as the user wrote them (RunConfig
    parses them); with `suppress_defaults`, the namespace holds only the options given."""
    p = ArgumentParser(add_help=add_help, prog="python -m search.run", description=DESCRIPTION,
                       argument_default=argparse.SUPPRESS if suppress_defaults else None)
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for name in RunConfig.fields():
        _add_option(groups[RunConfig.option(name).metadata["group"]], name, suppress_defaults=suppress_defaults)
    return p


def add_run_options(parser: argparse.ArgumentParser, *names: str, **defaults: Any) -> None:
    """search.run's options `names` on another command's parser (bench/ scripts that share them): the same flag,
    help and default (or `defaults[name]`), each value parsed into the field's type as it is read."""
    for name in names:
        _add_option(parser, name, default=defaults.get(name, RunConfig.default(name)), typed=True)


def _add_option(parser, name: str, suppress_defaults: bool = False, default: Any = None, typed: bool = False) -> None:
    meta = RunConfig.option(name).metadata
    shown = flag_text(default) if typed and default is not None else RunConfig.shown_default(name)
    kwargs: dict[str, Any] = {"dest": name, "help": meta["help"] + (f" (default: {shown})" if shown else "")}
    if not suppress_defaults:
        kwargs["default"] = default if typed else RunConfig.default(name)
    if meta["kind"] == "switch":
        kwargs["action"] = "store_true"
    elif meta["kind"] == "off-switch":
        kwargs["action"] = "store_false"
    elif meta["kind"] == "toggle":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs.update(choices=meta["choices"], metavar=meta["metavar"])
        if typed and meta["parse"] is not None:
            kwargs["type"] = _argparse_type(meta["parse"])
    parser.add_argument(RunConfig.flag(name), **kwargs)


def _argparse_type(parse):
    """The field's parse function as argparse's `type`: its message kept (argparse words a ValueError its own way)."""
    def typed(value: str) -> Any:
        try:
            return parse(value)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return typed


def parse_options(argv: list[str] | None = None, add_help: bool = True) -> tuple[dict[str, Any], frozenset[str]]:
    """The options `argv` and the `--config` YAML it names give, as written (flags over the file), and the names of
    those the user set; not yet parsed into their types or checked (`RunConfig.from_options` does). Without
    `add_help`, `--help` is an unknown option, not printed help."""
    parser = build_parser(add_help)
    given = set(vars(build_parser(add_help=False, suppress_defaults=True).parse_known_args(argv)[0]))
    first, _ = parser.parse_known_args(argv)
    if first.config:
        path = Path(first.config)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise UsageError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"config file {path} must be a mapping of option: value")
        defaults = {}
        for key, value in loaded.items():
            dest = str(key).replace("-", "_")
            if dest not in RunConfig.fields() or dest == "config":
                raise UsageError(f"unknown option '{key}' in config file {path}")
            defaults[dest] = value
        parser.set_defaults(**defaults)
        given |= set(defaults)
    return vars(parser.parse_args(argv)), frozenset(given)


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """A run's options from the command line (`argv`, or sys.argv) and the `--config` YAML it names, checked and
    frozen: bad input raises UsageError (one line; `python -m search.run` exits 2 with it)."""
    options, given = parse_options(argv)
    return RunConfig.from_options(options, given)


def print_help_if_asked(argv: list[str] | None = None) -> None:
    """`--help` or `-h` among the arguments: print search.run's help and exit 0."""
    try:
        build_parser().parse_known_args(argv)  # argparse prints the help and exits where it is asked for
    except UsageError:  # a bad value: the run itself says so, in one line
        pass


def options_reference() -> str:
    """docs/options.md: every option of `python -m search.run`, its default and what it does, from RunConfig."""
    lines = ["# Options of `python -m search.run`", "",
             "Made from `search/settings/config.py` (`RunConfig`'s fields) by `python -m search.settings.options`; "
             "`--help` prints the same. Every option may also be given in a YAML file (`--config FILE`), "
             "named as the flag without its dashes; flags override the file.", ""]
    for group in GROUPS:
        lines += [f"## {group.capitalize()}", "", "| option | default | what it does |", "| --- | --- | --- |"]
        for name in RunConfig.fields():
            meta = RunConfig.option(name).metadata
            if meta["group"] != group:
                continue
            flag = RunConfig.flag(name)
            if meta["kind"] == "toggle":
                flag = f"{flag} / --no-{flag[2:]}"
            elif meta["kind"] == "value":
                flag += " " + (meta["metavar"] or ("{" + ",".join(meta["choices"]) + "}" if meta["choices"]
                                                   else name.upper()))
            text = meta["help"].replace("%%", "%").replace("|", "\\|")
            flag = flag.replace("|", "\\|")
            lines.append(f"| `{flag}` | {RunConfig.shown_default(name) or ''} | {text} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    Path(__file__).resolve().parents[2].joinpath("docs", "options.md").write_text(options_reference())
