"""What every command-line entry point of the project shares: bad input (a UsageError) is one line and exit code 2.

The lowest layer holds it so that `spaces.describe`, `search.*` and `bench/` all report alike.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable

USAGE_EXIT = 2


def did_you_mean(value: str, known) -> str:
    """`; did you mean 'X'?` for the known name nearest a misspelt one, or "" where none is near."""
    near = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=0.6)
    return f"; did you mean '{near[0]}'?" if near else ""


class UsageError(ValueError):
    """Bad input a user can fix: an unknown model, module, unit or task, bad data, a foreign spec.

    The command-line entry points print its message as one line on stderr and exit with code 2
    (`spaces._cli.run_cli`).
    """


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage, so every CLI reports bad input alike."""

    def error(self, message):
        raise UsageError(message)


def run_cli(body: Callable[[], int]) -> int:
    """Run a command's body; a UsageError becomes `error: MESSAGE` on stderr and exit code 2."""
    try:
        return body()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_EXIT
