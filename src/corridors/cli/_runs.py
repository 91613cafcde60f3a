"""Figures from training runs: folders holding a `metrics.jsonl`.

One JSON object per line, each with a `kind` ("train", "measure", "eval", …) and a
`step`. This reader needs nothing from `corridors.train`: it plots whatever keys it
finds (loss, lr, corridor_score, drift, relative_drift, predicted_drift,
eval_accuracy), one line per run, runs overlaid, so runs of different optimizers or
seeds compare at a glance. A last line without its newline (a write cut short) is
ignored, as are lines that are not JSON.
"""

import json
import pathlib

import numpy as np

from ._report import pyplot, save_figure

METRICS = "metrics.jsonl"

# (file name, record kind, [(key, axis label, log scale)], title)
FIGURES = (
    (
        "training_loss.png",
        "train",
        [("loss", "training loss (nats)", True)],
        "Training loss",
    ),
    (
        "training_lr.png",
        "train",
        [("lr", "learning rate h (flow time per step)", True)],
        "Learning rate",
    ),
    (
        "corridor_measurements.png",
        "measure",
        [
            ("corridor_score", "corridor score ‖H∇L‖/‖∇L‖", True),
            ("predicted_drift", "predicted one-step drift (h²/2)‖H∇L‖", True),
            ("drift", "drift from the flow (parameter units)", True),
            ("relative_drift", "relative drift (distance / path length)", True),
        ],
        "Corridor measurements along training",
    ),
    (
        "eval_accuracy.png",
        "eval",
        [("eval_accuracy", "test accuracy (fraction)", False)],
        "Evaluation",
    ),
)


def read_records(path: pathlib.Path) -> list[dict]:
    data = pathlib.Path(path).read_bytes()
    records = []
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is torn
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def find_runs(folder: pathlib.Path) -> list[pathlib.Path]:
    """`folder` if it holds metrics.jsonl, else its sub-folders that do (sorted)."""
    if (folder / METRICS).is_file():
        return [folder]
    return sorted(path.parent for path in folder.glob(f"*/{METRICS}"))


def _series(records: list[dict], kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        (r["step"], r[key])
        for r in records
        if r.get("kind") == kind
        and "step" in r
        and isinstance(r.get(key), (int, float))
    ]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, values = np.asarray(rows, dtype=float).T
    return steps, values


def _label(run: pathlib.Path, runs: list[pathlib.Path]) -> str:
    names = [r.name for r in runs]
    return run.name if names.count(run.name) == 1 else str(run)


def plot_runs(run_dirs: list[pathlib.Path], out: pathlib.Path) -> list[pathlib.Path]:
    """Overlay the runs' metrics; one PNG per group of keys that any run has."""
    plt = pyplot()
    runs = {run: read_records(run / METRICS) for run in run_dirs}
    written = []
    for name, kind, keys, title in FIGURES:
        present = [
            (key, label, log)
            for key, label, log in keys
            if any(_series(records, kind, key)[0].size for records in runs.values())
        ]
        if not present:
            continue
        fig, axes = plt.subplots(
            len(present), 1, figsize=(8, 3.2 * len(present) + 0.6), sharex=True
        )
        axes = np.atleast_1d(axes)
        for ax, (key, label, log) in zip(axes, present, strict=True):
            for run, records in runs.items():
                steps, values = _series(records, kind, key)
                if steps.size:
                    ax.plot(steps, values, lw=1.3, label=_label(run, list(runs)))
            if log:
                ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7.5)
        axes[0].set_title(f"{title} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
        axes[-1].set_xlabel("training step")
        written.append(save_figure(fig, out / name))
    return written
