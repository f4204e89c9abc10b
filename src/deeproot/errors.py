"""The one error hierarchy. Every message is one line that says what went wrong and what to do.

Exit codes are part of the interface (schedulers alert on them), documented in
docs/reliability.md:

| code | meaning | what a scheduler should do |
|---|---|---|
| 0 | ok | nothing |
| 1 | error (stored or reference data, an unexpected state) | look at the message |
| 2 | usage: a bad option or argument | fix the command line |
| 3 | bad input: a file, a column, an option value, a configuration | fix the input |
| 4 | quality gate failed: not fit to publish (nothing was published) | look at the data |
| 5 | stopped by the site (challenge, block, rate limit) or the network | retry later |
| 6 | locked: another run holds the store's lock | retry later, or `--wait` |
| 7 | nothing new (a refresh that found no change) | nothing |
| 130 | interrupted (Ctrl-C, SIGTERM); state kept for `--resume` | retry |
"""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_GATE = 4
EXIT_STOPPED = 5
EXIT_LOCKED = 6
EXIT_NOTHING_NEW = 7
EXIT_INTERRUPTED = 130


class DeeprootError(Exception):
    """Base of every error deeproot reports to a user; `main()` prints it as one line."""

    exit_code = EXIT_ERROR


class InputError(DeeprootError):
    """Bad user input: a file, a column, an option value, a configuration."""

    exit_code = EXIT_INPUT


class DataError(DeeprootError):
    """Reference or stored data is missing or malformed."""


class QualityGateError(DeeprootError):
    """A result failed its quality gates and was not published."""

    exit_code = EXIT_GATE


class StoppedBySiteError(DeeprootError):
    """The site stopped us (challenge, block, rate limit) or the network failed: retry later."""

    exit_code = EXIT_STOPPED


class LockedError(DeeprootError):
    """Another run holds the lock on this store."""

    exit_code = EXIT_LOCKED


class RunInterrupted(DeeprootError):
    """The run was interrupted (Ctrl-C or SIGTERM); what was done is kept for a resume."""

    exit_code = EXIT_INTERRUPTED


class MissingExtraError(DeeprootError):
    """An optional dependency group is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed; install it with: pip install 'deeproot[{extra}]'"
        )


def require(module: str, extra: str):  # noqa: ANN201 - returns the imported module
    """Import an optional heavy module or raise a MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
