"""`metrics.jsonl`: one JSON object per line, appended so a crash never leaves a
partial line that a reader would take for data.

Each line is written with one `os.write` on a file opened with `O_APPEND`, then
`fsync`ed: a crash (even SIGKILL or power loss after the fsync) leaves either the
whole line or, at worst, a torn last line without its newline, which `read_metrics`
ignores. Non-finite floats are written as `null` (JSON has no NaN).
"""

import json
import math
import os
import pathlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

LINE_KINDS = ("train", "measure", "eval", "path", "summary", "error")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _clean(value.item())
    return value


def encode_line(record: dict) -> bytes:
    """One record as a UTF-8 JSON line with its newline."""
    return (
        json.dumps(_clean(record), allow_nan=False, separators=(",", ":")) + "\n"
    ).encode()


class MetricsWriter:
    """Appends records to a JSONL file, one atomic write and fsync per line.

    **Arguments:**

    - `path`: the file (created if absent).
    - `enabled`: False makes every call a no-op (non-zero processes of a multi-host
      job).
    """

    def __init__(self, path: str | pathlib.Path, *, enabled: bool = True):
        self.path = pathlib.Path(path)
        self.enabled = enabled
        self._fd = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict) -> None:
        """Append one record as a single line."""
        if self._fd is None:
            return
        data = encode_line(record)
        written = os.write(self._fd, data)
        if written != len(data):  # only on a full disk or a signal; never retried
            raise OSError(
                f"{self.path}: short write ({written} of {len(data)} bytes); the last "
                "line is torn and will be ignored by read_metrics."
            )
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_metrics(path: str | pathlib.Path, *, kind: str | None = None) -> list[dict]:
    """The records of a `metrics.jsonl`, in file order.

    A last line without its newline (a write cut short by a crash) is ignored; so is
    any other line that is not valid JSON, with a warning.

    **Arguments:**

    - `path`: the file, or a run directory holding `metrics.jsonl`.
    - `kind`: keep only records of this kind ("train", "measure", "eval", "path",
      "summary", "error").

    **Returns:**

    A list of dicts.

    **Example:**

    ```python
    import tempfile
    import corridors.train as ct
    with tempfile.TemporaryDirectory() as folder:
        with ct.MetricsWriter(f"{folder}/metrics.jsonl") as writer:
            writer.write({"kind": "train", "step": 1, "loss": 2.5})
            writer.write({"kind": "eval", "step": 1, "accuracy": 0.25})
            writer.write({"kind": "train", "step": 2, "loss": 2.0})
        records = ct.read_metrics(folder, kind="train")
    print([record["step"] for record in records])  # [1, 2]
    ```
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    data = path.read_bytes()
    lines = data.split(b"\n")
    # The piece after the last newline is empty for a clean file, torn otherwise.
    complete = lines[:-1]
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            warnings.warn(
                f"{path}:{number}: not a JSON line, ignored.", UserWarning, stacklevel=2
            )
            continue
        if not (
            isinstance(record, dict)
            and isinstance(record.get("kind"), str)
            and isinstance(record.get("step"), int)
        ):
            warnings.warn(
                f"{path}:{number}: not a record (an object with `kind` and `step`), "
                "ignored.",
                UserWarning,
                stacklevel=2,
            )
            continue
        if kind is None or record["kind"] == kind:
            records.append(record)
    return records


def rewrite_metrics(path: pathlib.Path, keep: Callable[[dict], bool]) -> int:
    """Atomically replace `path` with its complete lines for which `keep` is true
    (used on resume to drop what was logged after the restored checkpoint).
    Returns the number of lines kept."""
    if not path.exists():
        return 0
    kept = [record for record in read_metrics(path) if keep(record)]
    temporary = path.with_suffix(".jsonl.tmp")
    with open(temporary, "wb") as file:
        file.write(b"".join(encode_line(record) for record in kept))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return len(kept)


def columns(records: Iterable[dict], *names: str) -> list[list]:
    """Values of `names` in the records that have all of them (non-null)."""
    rows = [
        [record[name] for name in names]
        for record in records
        if all(record.get(name) is not None for name in names)
    ]
    return (
        [list(column) for column in zip(*rows, strict=True)]
        if rows
        else [[] for _ in names]
    )
