"""The one exception type that every user-facing mistake in this project becomes."""


class UsageError(ValueError):
    """Bad input a user can fix: an unknown model, module, unit or task, bad data, a foreign spec.

    The command-line entry points print its message as one line on stderr and exit with code 2
    (`spaces._cli.run_cli`).
    """
