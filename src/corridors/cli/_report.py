"""Report folders: JSON with the raw numbers, `report.md`, PNG figures.

Every command that writes a report folder writes one JSON document with a `kind`
("corridors.demo", "corridors.drift", …) and a `format` version; `corridors plot`
recognises a folder by it and redraws the figures from the numbers alone.
"""

import datetime
import json
import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = 1
ROUND_OFF_FLOOR = 1e-17
"""Distances are drawn no lower than this on log axes (exact zeros included)."""


def jsonable(value: Any) -> Any:
    """`value` with arrays as lists, numpy scalars as Python numbers, NaN/Inf as None
    and paths as strings (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        array = np.asarray(value)
        if array.ndim == 0:
            return jsonable(array.item())
        return [jsonable(item) for item in array.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return jsonable(value.item())
    return value


def write_json(path: pathlib.Path, document: dict) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(document), indent=1) + "\n", encoding="utf-8")
    return path


def read_json(path: pathlib.Path) -> dict:
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))


def floats(values: Sequence[Any] | None) -> np.ndarray:
    """A JSON list (None for NaN) as a float array."""
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def header(kind: str, seconds: float | None = None, **extra: Any) -> dict:
    """The common head of every JSON document a command writes."""
    from .. import __version__

    head = {
        "kind": kind,
        "format": FORMAT,
        "corridors_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    if seconds is not None:
        head["seconds"] = seconds
    head.update(extra)
    return head


def fit_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The slope of log y against log x (`corridors.drift_order`), over the points
    with y > 0.

    `None` with fewer than two usable points.
    """
    from .._methods import drift_order

    x, y = np.asarray(xs, float), floats(list(ys))
    keep = np.isfinite(y) & (y > 0) & np.isfinite(x) & (x > 0)
    if np.unique(x[keep]).size < 2:
        return None
    return drift_order(x[keep], y[keep]).order


def number(value: Any, digits: int = 3) -> str:
    """A short human-readable number: 1.23e-05, 0.123, 12.3, '—' for missing."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")  # legends outside the axes too
    pyplot().close(fig)
    return path


def log_floor(values: Any) -> np.ndarray:
    """Distances for a log axis: NaN stays NaN, anything below the floor is raised to
    `ROUND_OFF_FLOOR` (exact zeros are drawn on the floor, not dropped)."""
    array = floats(list(values)) if not isinstance(values, np.ndarray) else values
    return np.where(np.isnan(array), np.nan, np.maximum(array, ROUND_OFF_FLOOR))


def downsample(length: int, at_most: int = 200) -> np.ndarray:
    """At most `at_most` indices into range(length), always keeping both ends."""
    if length <= at_most:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, at_most).round().astype(int))
