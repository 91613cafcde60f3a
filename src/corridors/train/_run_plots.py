"""`plot_runs`: the paper's training figures from `metrics.jsonl` files.

Runs are grouped into families by optimizer and learning rate (seeds of one setting
form one family); each curve is the family's mean over its seeds at the steps all of
them logged, with a ±1 standard-deviation band, and the legend says n, the number of
seeds. One colour per family in every panel; the line style says what is drawn
(measured, predicted, the stability line 2/h, ...), explained once in the legend, which
sits outside the panels.
"""

import math
import pathlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._checks import InvalidInputError
from ._run_panels import (
    _PANELS,
    _STYLES,
    METRICS,
    _field,
    _Panel,
    caption,
    load_families,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf", "svg")
LAYOUTS = ("separate", "panels")
NEAR_FINAL = 0.1
"""RSI/EB are masked over this last fraction of the steps: against x* = the final
iterate both are ratios with ‖x_k − x*‖ → 0 in the denominator there."""
AUTO_LOG_RANGE = 10.0
"""Automatic scales: a positive quantity spanning more than this factor gets a log axis."""
STABILITY_MARGIN = 1.5
"""A stability line 2/h is drawn only within this factor of the sharpness data."""


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
      factor 10; RSI/EB always log); True forces log scales, False linear ones.

    **Returns:**

    The paths written.

    **Example:**

    ```python
    import json
    import pathlib
    import tempfile
    import corridors.train as ct
    with tempfile.TemporaryDirectory() as folder:
        run = pathlib.Path(folder) / "sgd-lr0.1-seed0"  # a run: run.json, metrics.jsonl
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"optimizer": "sgd", "lr": 0.1}))
        with ct.MetricsWriter(run / "metrics.jsonl") as writer:
            for step in (1, 2, 3):
                writer.write({"kind": "train", "step": step, "loss": 2 / step})
        paths = ct.plot_runs([folder], run / "figures")
        print([path.name for path in paths])  # ['loss.png']
    ```
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
