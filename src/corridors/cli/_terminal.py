"""Terminal output: a rich progress bar on stderr, tables and messages on stdout.

`--quiet` turns off the progress bar, the tables and the messages; `--json` keeps the
progress bar (on stderr) but replaces the tables on stdout by one JSON document, so
`corridors drift --json | jq` works.
"""

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ._report import jsonable


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:  # a log or a pipe: do not squeeze tables into 80
        console = Console(stderr=stderr, width=160)
    return console


class Terminal:
    """Where a subcommand writes what the user sees.

    **Arguments:**

    - `quiet`: no progress bar, tables or messages.
    - `json_mode`: tables and messages are replaced by `emit_json`'s document.
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False):
        self.quiet = quiet
        self.json_mode = json_mode
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    @contextlib.contextmanager
    def progress(self, total: int, description: str = "starting") -> Iterator[Any]:
        """A progress bar over `total` stages; yields `stage(description)`.

        Each call to `stage` marks the previous stage done and names the next one;
        leaving the block completes the bar.
        """
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            disable=self.quiet or not self.err.is_terminal,  # no bars in logs
            transient=True,  # the tables that follow say what was done
        )
        with progress:
            task = progress.add_task(description, total=total)
            started = [False]

            def stage(text: str) -> None:
                if started[0]:
                    progress.advance(task)
                started[0] = True
                progress.update(task, description=text)

            yield stage
            progress.update(task, completed=total, description="done")

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        right: Sequence[str] = (),
    ) -> None:
        """A rich table on stdout (unless quiet or JSON); cells are shown literally
        unless they are `rich.text.Text` (for colour)."""
        if self.quiet or self.json_mode:
            return
        table = Table()  # the title on its own line: rich would wrap it to the table
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left")
        for row in rows:  # plain strings are literal text (claims hold "[m, M]")
            table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in row))
        self.out.print(f"[bold]{title}[/bold]", highlight=False)
        self.out.print(table)

    def message(self, text: str) -> None:
        """A line on stdout (unless quiet or JSON); rich markup allowed."""
        if not (self.quiet or self.json_mode):
            self.out.print(text)

    def warning(self, text: str) -> None:
        """A line on stderr (unless quiet)."""
        if not self.quiet:
            self.err.print(f"[yellow]warning:[/yellow] {text}")

    def emit_json(self, document: Any) -> None:
        """The `--json` document on stdout (only in JSON mode)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(jsonable(document), indent=2) + "\n")
            sys.stdout.flush()
