"""A progress bar for the data layer's long work (simulating, reading a large file), on stderr."""

from __future__ import annotations

from collections.abc import Callable


class progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, show: bool, label: str, total: int) -> None:
        self.show, self.label, self.total = show, label, total

    def __enter__(self) -> Callable[..., None]:
        if not self.show:
            return lambda n=1: None
        from rich.console import Console
        from rich.progress import Progress

        self._p = Progress(console=Console(stderr=True), transient=True)
        self._p.__enter__()
        task = self._p.add_task(self.label, total=self.total)
        return lambda n=1: self._p.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.show:
            self._p.__exit__(*exc)
