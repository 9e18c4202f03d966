"""The one exception type that every user-facing mistake in this project becomes."""

import argparse


class UsageError(ValueError):
    """Bad input a user can fix: an unknown model, module, unit or task, bad data, a foreign spec.

    The command-line entry points print its message as one line on stderr and exit with code 2.
    """


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage, so every CLI reports bad input alike."""

    def error(self, message):
        raise UsageError(message)
