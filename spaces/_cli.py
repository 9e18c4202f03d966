"""What every command-line entry point of the project shares: bad input is one line and exit code 2.

The lowest layer holds it so that `spaces.describe`, `search.*` and `bench/` all report alike.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from spaces._errors import UsageError

USAGE_EXIT = 2


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
