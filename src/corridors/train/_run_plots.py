"""`plot_runs`: the paper's training figures from `metrics.jsonl` files.

Runs are grouped into families by optimizer and learning rate (seeds of one setting
form one family); each curve is the family's mean over its seeds at the steps all of
them logged, with a ±1 standard-deviation band, and the legend says n, the number of
seeds. One colour per family in every panel; the line style says what is drawn
(measured, predicted, the stability line 2/h, ...), explained once in the legend, which
sits outside the panels.
"""

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._checks import InvalidInputError
from ._metrics import read_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS = ("loss", "lr", "accuracy", "corridor_score", "drift", "sharpness", "rsi_eb")
FORMATS = ("png", "pdf", "svg")
LAYOUTS = ("separate", "panels")
NEAR_FINAL = 0.1
"""RSI/EB are masked over this last fraction of the steps: against x* = the final
iterate both are ratios with ‖x_k − x*‖ → 0 in the denominator there."""
AUTO_LOG_RANGE = 20.0
"""Automatic scales: a positive quantity spanning more than this factor gets a log axis."""
STABILITY_MARGIN = 1.5
"""A stability line 2/h is drawn only within this factor of the sharpness data."""


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
    "mean": ("-", "loss: minibatch running mean"),
    "measure": ("--", "loss: fixed measurement batch"),
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
                _Curve("train", _field("loss"), "mean"),
                _Curve("measure", _field("loss"), "measure"),
            ),
        ),
    ),
    "lr": (
        _Panel(
            "lr",
            "step size h used (the CLR value for CLR)",
            "h (flow time per step)",
            (_Curve("train", _field("lr"), "measured"),),
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


def load_families(run_dirs: Iterable[str | pathlib.Path]) -> list[_Family]:
    """The runs below `run_dirs`, grouped into families, sorted by label."""
    grouped: dict[str, tuple[list, list]] = {}
    for run_dir in _run_dirs(run_dirs):
        description = json.loads((run_dir / "run.json").read_text())
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


def _scale(panel: _Panel, data: list[np.ndarray], logy: bool | None) -> str:
    finite = np.concatenate(data) if data else np.zeros(0)
    positive = finite[finite > 0]
    if not len(positive) or logy is False or (panel.scale == "linear" and logy is None):
        return "linear"
    if logy or panel.scale == "log":
        return "log"
    # Automatic: log for positive data spanning more than AUTO_LOG_RANGE.
    if (
        len(positive) == len(finite)
        and positive.max() > AUTO_LOG_RANGE * positive.min()
    ):
        return "log"
    return "linear"


def _draw(axes, panel: _Panel, families, logy, notes: list[str]) -> set[str]:
    """Draw `panel` into `axes`; returns the styles used (empty: no data)."""
    styles, data = set(), []
    for family in families:
        for curve in panel.curves:
            steps, mean, std = family.series(curve.kind, curve.value)
            if panel.name in ("rsi", "eb") and len(steps):
                total = max(d.get("steps") or steps[-1] for d in family.descriptions)
                keep = steps < (1 - NEAR_FINAL) * total
                steps, mean, std = steps[keep], mean[keep], std[keep]
            if not len(steps):
                continue
            line, _ = _STYLES[curve.style]
            axes.plot(
                steps,
                mean,
                line,
                color=family.color,
                marker="o" if len(steps) <= 25 else None,
                markersize=3,
            )
            if curve.band and len(family.runs) > 1:
                axes.fill_between(
                    steps,
                    mean - std,
                    mean + std,
                    color=family.color,
                    alpha=0.2,
                    linewidth=0,
                )
            styles.add(curve.style)
            data.append(mean)
    if not styles:
        return styles
    scale = _scale(panel, data, logy)
    if scale == "log":
        axes.set_yscale("log", nonpositive="mask")
        if any((d <= 0).any() for d in data):
            notes.append("values ≤ 0 not shown on the log scale")
    if panel.name == "sharpness":
        if _stability_lines(axes, families, np.concatenate(data), notes):
            styles.add("stability")
    if panel.name in ("rsi", "eb"):
        total = max(d.get("steps") or 0 for f in families for d in f.descriptions)
        if total:
            axes.axvspan((1 - NEAR_FINAL) * total, total, color="0.85", zorder=0)
            notes.append(
                f"grey: last {NEAR_FINAL:.0%} of the steps masked\n"
                "(ill-defined as x_k → x* = final iterate)"
            )
    return styles


def _stability_lines(axes, families, data: np.ndarray, notes: list[str]) -> bool:
    """2/h per family, only where it falls within STABILITY_MARGIN of the data
    (whether any was drawn)."""
    low, high = data.min() / STABILITY_MARGIN, data.max() * STABILITY_MARGIN
    off, drawn = [], False
    for family in families:
        steps, lr, _ = family.series("measure", _field("lr"))
        keep = lr > 0
        steps, line = steps[keep], 2 / lr[keep]
        if not len(steps):
            continue
        inside = (line >= low) & (line <= high)
        if not inside.any():
            off.append(f"{family.label}: 2/h ≈ {np.median(line):.3g}")
            continue
        axes.plot(steps, np.where(inside, line, np.nan), ":", color=family.color)
        drawn = True
    if off:
        notes.append("2/h off the scale for " + "; ".join(off))
    return drawn


def _epoch_axis(axes, families) -> None:
    per_epoch = [d.get("steps_per_epoch") for f in families for d in f.descriptions]
    per_epoch = [p for p in per_epoch if p]
    if not per_epoch:
        return
    spe = float(per_epoch[0])
    top = axes.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch", fontsize="small")
    top.tick_params(labelsize="small")


def _figure(panels: Sequence[_Panel], families, logy, *, ncols: int) -> "Figure | None":
    """One figure with a panel per entry of `panels` that has data."""
    # matplotlib loads here: the command line imports this module for its choices.
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    drawn = [
        panel
        for panel in panels
        if any(
            len(family.series(curve.kind, curve.value)[0])
            for family in families
            for curve in panel.curves
        )
    ]
    if not drawn:
        return None
    fig = Figure(layout="constrained")
    ncols = min(ncols, len(drawn))
    nrows = math.ceil(len(drawn) / ncols)
    fig.set_size_inches(4.6 * ncols + 2.6, 3.3 * nrows + 0.5)
    styles_used: set[str] = set()
    first = None
    for index, panel in enumerate(drawn):
        axes = fig.add_subplot(nrows, ncols, index + 1, sharex=first)
        first = first or axes
        axes.set_label(panel.name)
        notes: list[str] = []
        styles_used |= _draw(axes, panel, families, logy, notes)
        axes.set_title(panel.title, fontsize="medium")
        axes.set_ylabel(panel.ylabel)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3, which="both" if axes.get_yscale() == "log" else "major")
        if notes:
            axes.text(
                0.02,
                0.97,
                "\n".join(notes),
                transform=axes.transAxes,
                fontsize="x-small",
                color="0.3",
                va="top",
            )
        if index < ncols:
            _epoch_axis(axes, families)
    handles = [
        Line2D(
            [],
            [],
            color=family.color,
            linewidth=2,
            label=f"{family.label} (n = {len(family.runs)})",
        )
        for family in families
    ]
    meanings: dict[str, list[str]] = {}  # one entry per line style
    for key, (line, text) in _STYLES.items():
        if key in styles_used:
            meanings.setdefault(line, []).append(text)
    if len(styles_used) > 1:
        handles += [
            Line2D([], [], color="0.2", linestyle=line, label=";\n".join(texts))
            for line, texts in meanings.items()
        ]
    fig.legend(
        handles=handles,
        loc="outside right upper",
        fontsize="small",
        title="run family (n = seeds)",
        title_fontsize="small",
    )
    fig.supxlabel(caption(families), fontsize="small", color="0.25")
    return fig


def build_figures(
    run_dirs: Iterable[str | pathlib.Path],
    *,
    metrics: Sequence[str] | None = None,
    layout: str = "separate",
    logy: bool | None = None,
) -> dict[str, "Figure"]:
    """The figures of `plot_runs`, by file stem, without writing them."""
    metrics = _check(metrics, layout, logy)
    families = load_families(run_dirs)
    if layout == "panels":
        panels = [panel for name in metrics for panel in _PANELS[name]]
        fig = _figure(panels, families, logy, ncols=2)
        return {} if fig is None else {"training": fig}
    figures = {}
    for name in metrics:
        fig = _figure(_PANELS[name], families, logy, ncols=2)
        if fig is not None:
            figures[name] = fig
    return figures


def _check(metrics, layout, logy) -> tuple[str, ...]:
    if metrics is None:
        metrics = METRICS
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise InvalidInputError(
            f"plot_runs: `metrics` must be among {list(METRICS)}, got {unknown}."
        )
    if layout not in LAYOUTS:
        raise InvalidInputError(
            f"plot_runs: `layout` must be one of {list(LAYOUTS)}, got {layout!r}."
        )
    if logy not in (None, True, False):
        raise InvalidInputError(
            f"plot_runs: `logy` must be None, True or False, got {logy!r}."
        )
    return tuple(dict.fromkeys(metrics))


def plot_runs(
    run_dirs: Iterable[str | pathlib.Path],
    out: str | pathlib.Path,
    *,
    format: str = "png",
    metrics: Sequence[str] | None = None,
    layout: str = "separate",
    logy: bool | None = None,
) -> list[pathlib.Path]:
    """Write the paper-style training figures of some runs.

    Each quantity is a panel against the step (an epoch axis on top), one colour per
    run family (optimizer and learning rate), the mean over the family's seeds with a
    ±1 std band and n in the legend, the legend outside the panels and a caption line
    with the configuration. Quantities (`metrics`, each drawn only when some run has
    the data): `loss` (minibatch running mean, solid, and the loss on the fixed
    measurement batch from step 0, dashed), `lr` (the step size used), `accuracy`
    (test accuracy), `corridor_score`, `drift` (absolute and relative, measured
    solid, predicted (h²/2)‖H∇L‖ dashed), `sharpness` (with the stability line 2/h,
    dotted, drawn only within a factor 1.5 of the data), `rsi_eb` (RSI and EB
    against the final iterate, log scale, the last 10% of the steps masked).

    **Arguments:**

    - `run_dirs`: run folders, or folders holding run folders (a `run` output).
    - `out`: folder for the figures (created).
    - `format`: "png", "pdf" or "svg".
    - `metrics`: the quantities to draw (default all of `METRICS`).
    - `layout`: "separate" (one file per quantity, `loss.png`, ...) or "panels"
      (one file `training.<format>` with a panel per quantity, shared step axis).
    - `logy`: None chooses per panel (log for positive data spanning more than a
      factor 20; RSI/EB always log); True forces log scales, False linear ones.

    **Returns:**

    The paths written.

    """
    if format not in FORMATS:
        raise InvalidInputError(
            f"plot_runs: `format` must be one of {list(FORMATS)}, got {format!r}."
        )
    figures = build_figures(run_dirs, metrics=metrics, layout=layout, logy=logy)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, fig in figures.items():
        path = out / f"{stem}.{format}"
        fig.savefig(path, dpi=130)
        written.append(path)
    return written
