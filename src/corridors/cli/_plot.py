"""`corridors plot RUN_DIR...`: draw the figures of report folders and training runs
from the numbers they hold, without recomputing anything.

- a `corridors demo` folder (demo.json) or a `corridors drift` folder (drift.json):
  its figures are redrawn, in place unless --out is given;
- training runs (folders holding run.json and metrics.jsonl, or a folder of such
  folders): the paper-style figures of `corridors.train.plot_runs` (seeds averaged
  with a ±1 std band) go into --out (default corridors-plots/), as --format
  png|pdf|svg, for the --metrics asked, one file each or --layout panels (one file),
  with log/linear y-axes chosen from the data unless --logy or --linear.
"""

import argparse
import pathlib

from ._options import UsageError, add_common_flags, existing_folder

NAME = "plot"
HELP = "redraw report figures (demo/drift folders) or overlay training runs"
EXAMPLE = """\
examples:
  corridors plot corridors-demo                  # redraw the demo's PNGs in place
  corridors plot corridors-drift --out figures   # into another folder
  corridors plot runs/train/clr-seed0 runs/train/sgd-lr0.1 --out compare
  corridors plot runs/train                      # every run found below it
  corridors plot runs/train --format pdf --layout panels   # one PDF, a panel each
  corridors plot runs/train --metrics loss drift --linear"""

TRAINING_OUT = "corridors-plots"


def _report_kinds():
    """Report documents `plot` recognises: (file name, kind, figure writer)."""
    from . import _figures

    return (
        ("demo.json", "corridors.demo", _figures.demo_figures),
        ("drift.json", "corridors.drift", _figures.drift_figures),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dirs",
        nargs="+",
        type=existing_folder,
        metavar="RUN_DIR",
        help="report folders (demo.json, drift.json) or training runs (run.json)",
    )
    from corridors.train._run_plots import FORMATS, LAYOUTS, METRICS

    training = parser.add_argument_group("training runs")
    training.add_argument(
        "--format",
        choices=FORMATS,
        default="png",
        help="file format of the figures (default png)",
    )
    training.add_argument(
        "--metrics",
        nargs="+",
        choices=METRICS,
        default=None,
        metavar="NAME",
        help=f"quantities to draw (default all: {', '.join(METRICS)})",
    )
    training.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="separate",
        help="separate: one file per quantity; panels: one file, a panel each",
    )
    scale = training.add_mutually_exclusive_group()
    scale.add_argument(
        "--logy",
        dest="logy",
        action="store_const",
        const=True,
        default=None,
        help="log y-axes on every panel",
    )
    scale.add_argument(
        "--linear",
        dest="logy",
        action="store_const",
        const=False,
        help="linear y-axes (default: chosen from the data's range)",
    )
    add_common_flags(
        parser,
        out=None,
        out_help="where figures go (default: report folders in place, training runs "
        f"into {TRAINING_OUT}/)",
        seed=False,
    )


def run(options: argparse.Namespace) -> int:
    # Only numpy, matplotlib and json: works without the `train` extra.
    from corridors.train import plot_runs

    from ._report import read_json
    from ._terminal import Terminal

    terminal = Terminal(quiet=options.quiet, json_mode=options.json)
    reports, training = [], []
    for folder in options.run_dirs:
        for file_name, kind, draw in _report_kinds():
            path = folder / file_name
            if path.is_file():
                try:
                    document = read_json(path)
                except ValueError as error:
                    raise UsageError(f"{path} is not valid JSON ({error}).") from None
                if document.get("kind") != kind:
                    raise UsageError(f"{path} is not a {kind} document.")
                reports.append((folder, document, draw))
                break
        else:
            if not (folder / "run.json").is_file() and not any(
                folder.glob("*/run.json")
            ):
                raise UsageError(
                    f"{folder}: nothing to plot (no demo.json, drift.json or "
                    "run.json, nor sub-folders with run.json)."
                )
            training.append(folder)

    written: list[pathlib.Path] = []
    with terminal.progress(len(reports) + bool(training), "plotting") as stage:
        for folder, document, draw in reports:
            stage(f"plotting {folder}")
            target = folder
            if options.out is not None:
                target = options.out / folder.name if len(reports) > 1 else options.out
            detail = ""
            try:
                figures = draw(document, target)
            except (KeyError, TypeError, IndexError) as error:
                figures, detail = [], f" ({type(error).__name__}: {error})"
            if not figures:
                raise UsageError(
                    f"{folder}: the report is incomplete or from another version"
                    f"{detail}; nothing to draw."
                )
            written += figures
        if training:
            stage(f"plotting {len(training)} training run(s)")
            out = options.out or pathlib.Path(TRAINING_OUT)
            written += plot_runs(
                training,
                out,
                format=options.format,
                metrics=options.metrics,
                layout=options.layout,
                logy=options.logy,
            )
    if not written:
        raise UsageError("the training runs hold no metrics to plot.")
    terminal.table("figures written", ["file"], [[str(path)] for path in written])
    terminal.emit_json({"figures": [str(path) for path in written]})
    return 0
