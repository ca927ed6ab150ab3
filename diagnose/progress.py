"""Progress bars on stderr for long work; silent when stderr is not a terminal or under --json piping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Advance(Protocol):
    def __call__(self, amount: int) -> None: ...


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Advance]:
    """Yield `advance(n)`; draws a rich bar on stderr while the block runs (nothing when disabled)."""
    if not enabled:
        yield lambda amount: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda amount: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda amount: progress.advance(task, amount)
