"""The rich progress bar of long library work (search, pretraining, ranking), on stderr by default."""

from __future__ import annotations


def progress_bar(*extra, console=None):
    """The commands' rich progress bar: description, bar, done/total, ``extra`` columns, elapsed, time left.

    ``extra`` are rich columns or column templates such as ``"{task.fields[rate]}"``.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(c) if isinstance(c, str) else c for c in extra]
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
