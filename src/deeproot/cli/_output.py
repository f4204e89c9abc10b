"""How the CLI draws on stderr: one progress bar shape for every long command."""

from __future__ import annotations

from typing import Any


def progress_bar(label: str = "{task.description}", *, info: bool = False,
                 elapsed: bool = False, transient: bool = True) -> Any:
    """A rich progress bar on stderr: label, bar, done/total, optional info text and elapsed time.

    Rich is imported here, not at start-up, so `deeproot --help` stays fast.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    if elapsed:
        columns.append(TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True), transient=transient)
