"""A rich progress bar (step, loss, lr, images/s) that can be silenced."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    """Progress of one run; every method is a no-op when `enabled` is False."""

    def __init__(self, description: str, total: int, *, start: int, enabled: bool):
        self.enabled = enabled
        self.console = Console(stderr=True, quiet=not enabled)
        if not enabled:
            self._progress = None
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task(
            description, total=total, completed=start, loss="…", lr="…", speed="…"
        )
        self._progress.start()

    def advance(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def show(self, *, loss: float | None, lr: float | None, speed: float | None):
        if self._progress is None:
            return
        fmt = lambda value, spec: "nan" if value is None else format(value, spec)  # noqa: E731
        self._progress.update(
            self._task,
            loss=fmt(loss, ".4g"),
            lr=fmt(lr, ".3g"),
            speed=fmt(speed, ".0f"),
        )

    def print(self, *objects) -> None:
        if self.enabled:
            self.console.print(*objects)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
