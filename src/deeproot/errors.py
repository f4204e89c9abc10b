"""The one error hierarchy. Every message is one line that says what went wrong and what to do."""


class DeeprootError(Exception):
    """Base of every error deeproot reports to a user; `main()` prints it as one line, exit 1."""

    exit_code = 1


class InputError(DeeprootError):
    """Bad user input: a file, a column, an option value."""


class DataError(DeeprootError):
    """Reference or stored data is missing or malformed."""


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
