"""What the training figures draw: the panels (quantity, records, line styles) and the
run families (runs of one optimizer and lr, their seeds averaged)."""

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .._checks import InvalidInputError
from ._metrics import read_metrics

METRICS = (
    "loss",
    "lr",
    "accuracy",
    "corridor_score",
    "drift",
    "sharpness",
    "spectrum",
    "rsi_eb",
)


@dataclasses.dataclass
class _Family:
    label: str
    color: str
    runs: list[list[dict]]
    descriptions: list[dict]

    def series(self, kind: str, value: Callable[[dict], float | None]):
        """(steps, mean, std) over the seeds at the steps all of them logged."""
        runs = []
        for records in self.runs:
            points = {}
            for record in records:
                if record.get("kind") == kind:
                    y = value(record)
                    if y is not None and math.isfinite(y):
                        points[record["step"]] = y
            runs.append(points)
        common = sorted(set.intersection(*(set(points) for points in runs)))
        if not common:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        values = np.array([[points[s] for s in common] for points in runs], float)
        return np.array(common, float), values.mean(0), values.std(0)


def _field(name: str) -> Callable[[dict], float | None]:
    return lambda record: record.get(name)


def _largest_block(record: dict) -> float | None:
    """The largest per-block sharpness of a record (None if it has none)."""
    values = [
        v for v in (record.get("block_sharpness") or {}).values() if v is not None
    ]
    return max(values) if values else None


def _ratio(top: str, *bottom: str) -> Callable[[dict], float | None]:
    def value(record):
        parts = [record.get(name) for name in (top, *bottom)]
        if any(part is None for part in parts) or not np.prod(parts[1:]):
            return None
        return parts[0] / np.prod(parts[1:])

    return value


@dataclasses.dataclass(frozen=True)
class _Curve:
    kind: str
    value: Callable[[dict], float | None]
    style: str  # a key of _STYLES
    band: bool = True


_STYLES = {
    "running": ("-", "training batches (running mean)"),
    "last": ("-", "training steps (h of the last update)"),
    "measure": ("--", "fixed measurement batch"),
    "measured": ("-", "measured"),
    "predicted": ("--", "predicted (h²/2)‖H∇L‖"),
    "stability": (":", "stability line 2/h"),
}


@dataclasses.dataclass(frozen=True)
class _Panel:
    name: str
    title: str
    ylabel: str
    curves: tuple[_Curve, ...]
    scale: str = "auto"  # "auto", "log" or "linear" (before --logy/--linear)


_PANELS = {
    "loss": (
        _Panel(
            "loss",
            "training loss",
            "cross-entropy (nats)",
            (
                _Curve("train", _field("loss"), "running"),
                _Curve("measure", _field("loss"), "measure"),
            ),
        ),
    ),
    "lr": (
        _Panel(
            "lr",
            "step size h used (the CLR value for CLR)",
            "h (flow time per step)",
            (
                _Curve("train", _field("lr"), "last"),
                _Curve("measure", _field("lr"), "measure"),
            ),
        ),
    ),
    "accuracy": (
        _Panel(
            "accuracy",
            "test accuracy",
            "fraction correct",
            (_Curve("eval", _field("eval_accuracy"), "measured"),),
            scale="linear",
        ),
    ),
    "corridor_score": (
        _Panel(
            "corridor_score",
            "corridor score (0 in a corridor)",
            "‖H∇L‖/‖∇L‖ (1/flow time)",
            (_Curve("measure", _field("corridor_score"), "measured"),),
        ),
    ),
    "drift": (
        _Panel(
            "drift",
            "one-step drift from the gradient flow",
            r"$\|\theta_{k+1} - \varphi(h)\|$ (parameter units)",
            (
                _Curve("measure", _field("drift"), "measured"),
                _Curve("measure", _field("predicted_drift"), "predicted", band=False),
            ),
        ),
        _Panel(
            "relative_drift",
            "relative drift (per unit step length h‖∇L‖)",
            "drift / (h‖∇L‖)",
            (
                _Curve("measure", _field("relative_drift"), "measured"),
                _Curve(
                    "measure",
                    _ratio("predicted_drift", "lr", "grad_norm"),
                    "predicted",
                    band=False,
                ),
            ),
        ),
    ),
    "sharpness": (
        _Panel(
            "sharpness",
            "sharpness (top Hessian eigenvalue)",
            "λ_max (1/flow time)",
            (_Curve("measure", _field("sharpness"), "measured"),),
        ),
    ),
    "spectrum": (
        _Panel(
            "hessian_trace",
            "Hessian trace (Hutch++)",
            "tr H (1/flow time)",
            (_Curve("measure", _field("hessian_trace"), "measured"),),
        ),
        _Panel(
            "block_sharpness",
            "largest per-block sharpness",
            r"$\max_b \lambda_{\max}(H_{bb})$ (1/flow time)",
            (_Curve("measure", _largest_block, "measured"),),
        ),
    ),
    "rsi_eb": (
        _Panel(
            "rsi",
            "RSI ⟨g_k, x_k − x*⟩/‖x_k − x*‖²",
            "RSI (1/flow time)",
            (_Curve("path", _field("rsi"), "measured"),),
            scale="log",
        ),
        _Panel(
            "eb",
            "EB ‖g_k‖/‖x_k − x*‖",
            "EB (1/flow time)",
            (_Curve("path", _field("eb"), "measured"),),
            scale="log",
        ),
    ),
}


def _run_dirs(paths: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """Run folders (holding run.json) among `paths` and their sub-folders."""
    found = []
    for path in map(pathlib.Path, paths):
        if (path / "run.json").is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.glob("*/run.json")))
        else:
            raise InvalidInputError(f"plot_runs: {path} is not a directory.")
    if not found:
        raise InvalidInputError(
            "plot_runs: no runs found (a run folder holds run.json and metrics.jsonl)."
        )
    return found


def family_label(description: dict) -> str:
    """The name of a run's family: optimizer and learning rate (or its cap)."""
    name = description["optimizer"]
    if description.get("lr") is None:
        label = {"clr": "CLR", "sps_max": "SPS_max"}.get(name, name)
        if description.get("max_lr") is not None:
            label += f" (cap {description['max_lr']:g})"
        return label
    return f"{name} lr={description['lr']:g}"


def _description(path: pathlib.Path) -> dict:
    """A run's run.json, refused in one line naming the file when it is not one."""
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise InvalidInputError(f"plot_runs: {path}: unreadable ({error}).") from None
    number = (int, float, type(None))
    if not (
        isinstance(description, dict)
        and isinstance(description.get("optimizer"), str)
        and isinstance(description.get("lr"), number)
        and isinstance(description.get("max_lr"), number)
    ):
        raise InvalidInputError(
            f"plot_runs: {path} is not a run description (an object with "
            "`optimizer` and `lr`, as corridors train writes)."
        )
    return description


def load_families(run_dirs: Iterable[str | pathlib.Path]) -> list[_Family]:
    """The runs below `run_dirs`, grouped into families, sorted by label."""
    grouped: dict[str, tuple[list, list]] = {}
    for run_dir in _run_dirs(run_dirs):
        description = _description(run_dir / "run.json")
        metrics = run_dir / "metrics.jsonl"
        records = read_metrics(run_dir) if metrics.exists() else []
        runs, descriptions = grouped.setdefault(family_label(description), ([], []))
        runs.append(records)
        descriptions.append(description)
    return [
        _Family(label, f"C{index % 10}", runs, descriptions)
        for index, (label, (runs, descriptions)) in enumerate(sorted(grouped.items()))
    ]


def caption(families: Sequence[_Family]) -> str:
    """One line with the configuration: model, data, batch, optimizer, seeds."""
    descriptions = [d for family in families for d in family.descriptions]

    def values(key):
        seen = []
        for d in descriptions:
            if d.get(key) is not None and d[key] not in seen:
                seen.append(d[key])
        return "/".join(str(v) for v in seen) or "?"

    seeds = sorted({len(family.runs) for family in families})
    parts = [
        f"model {values('model')}",
        f"data {values('dataset')}",
        f"batch {values('batch_size')}",
        f"optimizer {values('optimizer')}",
        f"measurement batch {values('measure_batch')}",
        "mean ± std over n = " + "/".join(map(str, seeds)) + " seed(s)",
    ]
    if any(d.get("weight_decay") for d in descriptions):
        parts.insert(4, f"weight decay {values('weight_decay')}")
    return " · ".join(parts)
