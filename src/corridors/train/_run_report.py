"""`write_report`: the `report.md` of a training sweep: its configuration, a table of
final and best figures per run, and the figures of `plot_runs`."""

import json
import math
import pathlib

from .._checks import InvalidInputError
from ._config import TrainConfig
from ._metrics import read_metrics
from ._run_panels import _run_dirs, caption, load_families
from ._run_plots import plot_runs
from ._settings import read_toml

COLUMNS = (
    "run", "final loss", "best loss", "final acc.", "best acc.", "mean corridor score",
    "mean drift", "mean rel. drift", "max sharpness λ", "2/h", "max λh/2",
)  # fmt: skip


def _number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.4g}"


def _values(records, kind, key) -> list[float]:
    return [r[key] for r in records if r.get("kind") == kind and r.get(key) is not None]


def run_row(run_dir: pathlib.Path) -> list[str]:
    """The report's table row of one run folder."""
    description = json.loads((run_dir / "run.json").read_text())
    path = run_dir / "metrics.jsonl"
    records = read_metrics(path) if path.exists() else []
    losses = _values(records, "train", "loss")
    accuracies = _values(records, "eval", "eval_accuracy")
    scores = _values(records, "measure", "corridor_score")
    drifts = _values(records, "measure", "drift")
    relative = _values(records, "measure", "relative_drift")
    # λh/2 at each sharpness measurement: ≥ 1 is past the stability edge 2/h.
    edge = [
        r["sharpness"] * r["lr"] / 2
        for r in records
        if r.get("kind") == "measure"
        and r.get("sharpness") is not None
        and r.get("lr") is not None
    ]
    sharpness = _values(records, "measure", "sharpness")
    lr = description.get("lr")
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return [
        f"`{run_dir.name}`",
        _number(losses[-1] if losses else None),
        _number(min(losses, default=None)),
        _number(accuracies[-1] if accuracies else None),
        _number(max(accuracies, default=None)),
        _number(mean(scores)),
        _number(mean(drifts)),
        _number(mean(relative)),
        _number(max(sharpness, default=None)),
        _number(2 / lr) if lr else "varies",
        _number(max(edge, default=None)),
    ]


def _other_settings(config: pathlib.Path, run_dirs) -> list[str]:
    """A line naming the runs that an earlier `corridors train` into the same
    folder trained with another model, data set or optimizer (`config.toml` holds
    the latest invocation's settings only; each run keeps its own in run.json)."""
    try:
        latest = read_toml(TrainConfig, config)
    except InvalidInputError:  # unreadable: the report shows the file as it is
        return []
    keys = ("model", "dataset", "optimizer")
    others = []
    for run_dir in run_dirs:
        try:
            run = json.loads((run_dir / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(run, dict) and any(
            run.get(key, latest.get(key)) != latest.get(key) for key in keys
        ):
            others.append(f"`{run_dir.name}`")
    if not others:
        return []
    return [
        f"The settings of the latest `corridors train` into this folder; "
        f"{', '.join(others)} were trained by an earlier one with another model, "
        "data set or optimizer (each run's own settings are in its run.json).",
        "",
    ]


def write_report(
    out: str | pathlib.Path, *, figures: str = "figures", format: str = "png"
) -> pathlib.Path:
    """Write `out/report.md` for the runs below `out`, with their figures in
    `out/<figures>/`.

    **Arguments:**

    - `out`: the sweep folder (`TrainConfig.out`), holding run folders and
      `config.toml`.
    - `figures`: sub-folder for the figures.
    - `format`: their format ("png", "pdf", "svg").

    **Returns:**

    The path of `report.md`.
    """
    out = pathlib.Path(out)
    run_dirs = _run_dirs([out])
    written = plot_runs([out], out / figures, format=format)
    lines = [
        f"# Training report: `{out}`",
        "",
        caption(load_families([out])),
        "",
        "## Runs",
        "",
        "Final and best of the minibatch running-mean loss and of the test "
        "accuracy; means over the measurements (fixed measurement batch) of the "
        "corridor score ‖H∇L‖/‖∇L‖, the one-step drift from the gradient flow and "
        "the drift relative to the step length h‖∇L‖; the largest top Hessian "
        "eigenvalue λ, the stability threshold 2/h, and the largest λh/2 "
        "(≥ 1: past the edge of stability).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(run_row(run_dir)) + " |" for run_dir in run_dirs]
    config = out / "config.toml"
    if config.exists():
        lines += ["", "## Configuration", "", *_other_settings(config, run_dirs)]
        lines += ["```toml", config.read_text().rstrip(), "```"]
    lines += ["", "## Figures", ""]
    for path in written:
        lines += [f"![{path.stem}]({path.relative_to(out).as_posix()})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return report
