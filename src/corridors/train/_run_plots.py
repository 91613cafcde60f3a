"""`plot_runs`: the paper's figures from `metrics.jsonl` files.

Runs are grouped by optimizer and learning rate (CLR and the other Polyak-type steps
form one group each); each curve is the mean over the group's seeds at the steps all
of them logged, with a ±1 standard-deviation band.
"""

import json
import pathlib
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure

from .._checks import InvalidInputError
from ._metrics import read_metrics


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


def _label(description: dict) -> str:
    name = description["optimizer"]
    if description.get("lr") is None:
        label = {"clr": "CLR", "sps_max": "SPS_max"}.get(name, name)
        if description.get("max_lr") is not None:
            label += f" (cap {description['max_lr']:g})"
        return label
    return f"{name} lr={description['lr']:g}"


def _series(records: list[dict], kind: str, key: str) -> dict[int, float]:
    return {
        r["step"]: r[key]
        for r in records
        if r.get("kind") == kind and r.get(key) is not None
    }


def _mean_std(runs: list[dict[int, float]]) -> tuple[np.ndarray, ...]:
    common = sorted(set.intersection(*(set(run) for run in runs))) if runs else []
    if not common:
        return np.array([]), np.array([]), np.array([])
    values = np.array([[run[step] for step in common] for run in runs], float)
    return np.array(common), values.mean(0), values.std(0)


def _plot_metric(axes, groups, kind, key, *, style="-", band=True, suffix=""):
    drawn = False
    for index, (label, runs) in enumerate(groups.items()):
        steps, mean, std = _mean_std([_series(r, kind, key) for r in runs])
        if not len(steps):
            continue
        color = f"C{index % 10}"
        axes.plot(steps, mean, style, color=color, label=label + suffix)
        if band and len(runs) > 1:
            axes.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
        drawn = True
    return drawn


def plot_runs(
    run_dirs: Iterable[str | pathlib.Path], out: str | pathlib.Path
) -> list[pathlib.Path]:
    """Write the paper-style figures of some runs as PNG files.

    Figures (each only when some run has the data): `loss.png` (training loss vs
    step, log scale), `lr.png` (learning rate used vs step: the CLR value),
    `accuracy.png` (test accuracy), `corridor_score.png`, `drift.png` (measured drift,
    solid, and predicted drift (h²/2)‖H∇L‖, dashed), `sharpness.png` (top Hessian
    eigenvalue with the 2/lr stability line, dotted), `rsi_eb.png` (post-hoc RSI and
    EB along the path).

    **Arguments:**

    - `run_dirs`: run folders, or folders holding run folders (a `run` output).
    - `out`: folder for the PNG files (created).

    **Returns:**

    The paths written.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[list[dict]]] = defaultdict(list)
    for run_dir in _run_dirs(run_dirs):
        description = json.loads((run_dir / "run.json").read_text())
        records = read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
        groups[_label(description)].append(records)
    groups = dict(sorted(groups.items()))
    written = []

    def figure(name, ylabel, draw, *, log=False, title=""):
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        axes = fig.add_subplot()
        if not draw(axes):
            return
        axes.set_xlabel("step")
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        if title:
            axes.set_title(title)
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
        path = out / name
        fig.savefig(path, dpi=120)
        written.append(path)

    figure(
        "loss.png",
        "training loss (nats)",
        lambda ax: _plot_metric(ax, groups, "train", "loss"),
        log=True,
        title="training loss (mean ± std over seeds)",
    )
    figure(
        "lr.png",
        "learning rate h (flow time per step)",
        lambda ax: _plot_metric(ax, groups, "train", "lr"),
        log=True,
        title="learning rate used (the CLR value for CLR)",
    )
    figure(
        "accuracy.png",
        "test accuracy (fraction)",
        lambda ax: _plot_metric(ax, groups, "eval", "eval_accuracy"),
        title="test accuracy",
    )
    figure(
        "corridor_score.png",
        "corridor score ‖H∇L‖/‖∇L‖ (1/flow time)",
        lambda ax: _plot_metric(ax, groups, "measure", "corridor_score"),
        log=True,
        title="corridor score on the measurement batch (0 in a corridor)",
    )

    def drift(axes):
        drawn = _plot_metric(axes, groups, "measure", "drift", suffix=" drift")
        predicted = _plot_metric(
            axes,
            groups,
            "measure",
            "predicted_drift",
            style="--",
            band=False,
            suffix=" predicted",
        )
        return drawn or predicted

    figure(
        "drift.png",
        "one-step distance to the gradient flow (parameter units)",
        drift,
        log=True,
        title="drift (solid) and (h²/2)‖H∇L‖ (dashed)",
    )

    def sharpness(axes):
        if not _plot_metric(axes, groups, "measure", "sharpness"):
            return False
        for index, (label, runs) in enumerate(groups.items()):
            steps, lr, _ = _mean_std([_series(r, "measure", "lr") for r in runs])
            positive = lr > 0
            if positive.any():
                axes.plot(
                    steps[positive],
                    2 / lr[positive],
                    ":",
                    color=f"C{index % 10}",
                    label=f"2/lr ({label})",
                )
        return True

    figure(
        "sharpness.png",
        "top Hessian eigenvalue (1/flow time)",
        sharpness,
        log=True,
        title="sharpness, with the stability line 2/lr (dotted)",
    )

    def rsi_eb(axes):
        drawn = _plot_metric(axes, groups, "path", "rsi", suffix=" RSI")
        return (
            _plot_metric(axes, groups, "path", "eb", style="--", suffix=" EB") or drawn
        )

    figure(
        "rsi_eb.png",
        "RSI (solid), EB (dashed)",
        rsi_eb,
        title="restricted secant inequality and error bound vs the final iterate",
    )
    return written
