"""`corridors drift`: how far discrete methods drift from the gradient flow (or the
modified flow) on a landscape or a model on a data set, for a list of learning rates.

For each method and lr it runs `corridors.measure_drift` for n steps, n = ⌊T/lr⌋ at a
fixed horizon T (default) or n = --steps, and reports the final distance, the relative
drift, the fitted log-log slope against lr and the slope the theory predicts. Writes
drift.json, report.md and two figures into --out.
"""

import argparse
import math
import time

from .._methods import METHOD_NAMES, method_info
from ._options import (
    UsageError,
    add_common_flags,
    existing_folder,
    positive_float,
    positive_int,
    unit_interval,
)

NAME = "drift"
HELP = "drift of GD/momentum/Runge–Kutta from the (modified) flow vs learning rate"
EXAMPLE = """\
examples:
  corridors drift                                        # GD on a 2-D quadratic
  corridors drift --landscape cone --method gd rk4 momentum
  corridors drift --landscape quadratic --lr 0.2 0.1 0.05 0.025 --method gd rk4
  corridors drift --steps 1 --method gd                  # one-step (local) drift
  corridors drift --reference modified --lr 0.2 0.1 0.05 # GD vs the modified flow
  corridors drift --model mlp --dataset digits --json > drift.json
  corridors drift --model mlp --dataset folder --data-dir DIR   # DIR/data.npz: x, y

Default lrs: 0.2, 0.1, 0.05, 0.025 times the problem's lr scale (1e-3 on Rosenbrock);
default horizon: that scale. Each distinct step count compiles once (--steps N: one
compile per method)."""

METHODS = METHOD_NAMES
MAX_STEPS = 1_000_000
"""The most steps one (method, lr) run may take: a smaller lr is refused up front."""
DEFAULT_LRS = (0.2, 0.1, 0.05, 0.025)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._data import DATASETS, MODELS
    from ._problems import LANDSCAPES

    target = parser.add_argument_group(
        "what to measure on (default: --landscape quadratic)"
    )
    which = target.add_mutually_exclusive_group()
    which.add_argument("--landscape", choices=LANDSCAPES, default=None)
    which.add_argument(
        "--model", choices=MODELS, default=None, help="a network on --dataset"
    )
    target.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="data for --model (default: digits, embedded in scikit-learn)",
    )
    target.add_argument(
        "--data-dir",
        type=existing_folder,
        default=None,
        metavar="DIR",
        help="folder holding data.npz (x: (n, d) floats, y: (n,) labels) for "
        "--dataset folder",
    )
    target.add_argument(
        "--dim", type=positive_int, default=2, help="landscape dimension (default: 2)"
    )
    target.add_argument(
        "--hidden", type=positive_int, default=32, help="MLP width (default: 32)"
    )
    target.add_argument(
        "--train-size",
        type=positive_int,
        default=512,
        metavar="N",
        help="training samples for --model (default: 512)",
    )
    how = parser.add_argument_group("how")
    how.add_argument(
        "--lr",
        "--lrs",
        dest="lrs",
        type=positive_float,
        nargs="+",
        default=None,
        metavar="LR",
        help="learning rates (default: 0.2 0.1 0.05 0.025 × the problem's scale)",
    )
    how.add_argument(
        "--method",
        "--methods",
        dest="methods",
        choices=METHODS,
        nargs="+",
        default=["gd"],
        metavar="METHOD",
        help=f"one or more of {', '.join(METHODS)} (default: gd)",
    )
    how.add_argument(
        "--reference",
        choices=("flow", "modified"),
        default="flow",
        help="the gradient flow, or GD's modified flow θ' = −∇L − (h/2)H∇L "
        "(gd/euler only) (default: flow)",
    )
    span = how.add_mutually_exclusive_group()
    span.add_argument(
        "--horizon",
        type=positive_float,
        default=None,
        metavar="T",
        help="fixed flow time: n = ⌊T/lr⌋ steps per lr (default: the lr scale)",
    )
    span.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="the same number of steps for every lr instead",
    )
    how.add_argument(
        "--beta",
        type=unit_interval,
        default=0.9,
        help="momentum coefficient in [0, 1) (default: 0.9)",
    )
    add_common_flags(
        parser,
        out="corridors-drift",
        out_help="report folder (default: corridors-drift/)",
    )


def theory_order(method: str, reference: str, mode: str, corridor: bool) -> int | None:
    """The log-log slope the theory predicts (None in a corridor: no drift at all)."""
    if corridor and reference == "flow":
        return None
    return method_info(method).drift_order(reference, local=mode == "steps")


def matched_end_time(method: str, lr: float, n: int, beta: float) -> float:
    """The flow time `method` reaches after n steps along a corridor."""
    from .._methods import matched_times

    return float(matched_times(method, lr, n, beta=beta)[-1])


def _plan(options, problem) -> tuple[list[float], str, float | None, dict]:
    """lrs, mode, horizon, and the step count for every lr; refuses what cannot run."""
    lrs = options.lrs or [problem.lr_scale * f for f in DEFAULT_LRS]
    if options.reference == "modified":
        bad = [m for m in options.methods if not method_info(m).modified_flow]
        if bad:
            raise UsageError(
                f"--reference modified is GD's modified flow; not defined for "
                f"{', '.join(bad)} (use --method gd or euler)."
            )
    if options.steps is not None:
        mode, horizon = "steps", None
        steps = {lr: options.steps for lr in lrs}
    else:
        mode = "horizon"
        horizon = options.horizon or problem.lr_scale
        steps = {}
        for lr in lrs:
            n = math.floor(horizon / lr * (1 + 1e-12))
            if n < 1:
                raise UsageError(
                    f"--lr {lr:g} is above the horizon T = {horizon:g}: no step fits; "
                    "lower the lr or raise --horizon."
                )
            steps[lr] = n
    for lr, n in steps.items():
        if n > MAX_STEPS:
            raise UsageError(
                f"--lr {lr:g} needs {n:,} steps per run, more than the budget of "
                f"{MAX_STEPS:,}; raise the lr or lower --horizon/--steps."
            )
    if problem.apex_time is not None:
        for method in options.methods:
            for lr in lrs:
                end = matched_end_time(method, lr, steps[lr], options.beta)
                if end >= problem.apex_time:
                    raise UsageError(
                        f"{method} at lr {lr:g} runs to flow time {end:.3g}, past the "
                        f"apex of {problem.name} (t* = {problem.apex_time:.3g}), where "
                        "the flow stops; lower --horizon/--steps."
                    )
    return lrs, mode, horizon, steps


def run(options: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import corridors as cr

    from . import _figures, _problems
    from ._progress import Terminal
    from ._report import downsample, fit_slope, header, write_json

    began = time.perf_counter()
    terminal = Terminal(quiet=options.quiet, json_mode=options.json)
    if options.model is None and (options.dataset or options.data_dir):
        raise UsageError("--dataset and --data-dir go with --model (e.g. --model mlp).")
    if options.data_dir is not None and options.dataset not in (None, "folder"):
        raise UsageError("--data-dir is for --dataset folder.")
    if options.model is not None:
        dataset = options.dataset or ("folder" if options.data_dir else "digits")
        problem, warning = _problems.model_problem(
            options.model,
            dataset,
            data_dir=options.data_dir,
            hidden=options.hidden,
            n_train=options.train_size,
            seed=options.seed,
        )
        if warning:
            terminal.warning(warning)
    else:
        problem = _problems.landscape_problem(
            options.landscape or "quadratic", dim=options.dim, seed=options.seed
        )
    lrs, mode, horizon, steps = _plan(options, problem)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)  # fail before the work, not after it

    runs = []
    total = len(options.methods) * len(lrs) + 1
    with terminal.progress(total, "drift") as stage:
        for method in options.methods:
            for lr in lrs:
                stage(f"{method}, lr {lr:g}, {steps[lr]} steps")
                drift = cr.measure_drift(
                    problem.loss,
                    problem.params0,
                    lr,
                    steps[lr],
                    problem.args,
                    method=method,
                    reference=options.reference,
                    beta=options.beta,
                    throw=False,
                )
                if drift.result != cr.RESULTS.successful:
                    raise UsageError(
                        f"{method} at lr {lr:g} ({steps[lr]} steps): "
                        f"{cr.RESULTS[drift.result]}"
                    )
                distance = np.asarray(drift.distance)
                keep = downsample(distance.size)
                runs.append(
                    {
                        "method": method,
                        "lr": lr,
                        "n_steps": steps[lr],
                        "flow_time": float(drift.ts[-1]),
                        "drift": float(distance[-1]),
                        "max_drift": float(distance.max()),
                        "relative_drift": float(drift.relative[-1]),
                        "loss_method": float(drift.loss_method[-1]),
                        "loss_reference": float(drift.loss_reference[-1]),
                        "ts": np.asarray(drift.ts)[keep],
                        "distance": distance[keep],
                    }
                )
        leaves = jax.tree.leaves(problem.params0)
        size = math.sqrt(sum(float(np.sum(np.square(leaf))) for leaf in leaves))
        round_off = 1e-12 * (1.0 + size)  # below this a drift is round-off
        fits = []
        for method in options.methods:
            mine = [run for run in runs if run["method"] == method]
            values = [run["drift"] for run in mine]
            at_round_off = max(values) <= round_off
            fits.append(
                {
                    "method": method,
                    "slope": None if at_round_off else fit_slope(lrs, values),
                    "theory": theory_order(
                        method, options.reference, mode, problem.corridor
                    ),
                    "at_round_off": at_round_off,
                }
            )
        document = header(
            "corridors.drift",
            problem={
                "name": problem.name,
                "description": problem.description,
                "parameters": problem.parameters,
                "corridor": problem.corridor,
            },
            settings={
                "lrs": lrs,
                "methods": options.methods,
                "reference": options.reference,
                "mode": mode,
                "horizon": horizon,
                "steps": options.steps,
                "beta": options.beta,
                "seed": options.seed,
            },
            runs=runs,
            fits=fits,
        )
        stage("writing the report")
        figures = _figures.drift_figures(document, out)
        document["seconds"] = time.perf_counter() - began
        document["files"] = [path.name for path in figures] + [
            "report.md",
            "drift.json",
        ]
        write_json(out / "drift.json", document)
        (out / "report.md").write_text(markdown(document), encoding="utf-8")

    terminal.table(
        f"Drift from the {'gradient' if options.reference == 'flow' else 'modified'} "
        f"flow: {problem.description}",
        RUN_COLUMNS,
        _run_rows(runs),
        right=RUN_COLUMNS[1:],
    )
    terminal.table(
        "Fitted order: slope of log drift vs log lr",
        ["method", "slope", "theory"],
        [[f["method"], _slope(f), _theory(f)] for f in fits],
    )
    terminal.message(f"Report: [bold]{out / 'report.md'}[/bold]; figures beside it.")
    terminal.emit_json({**document, "out": str(out)})
    return 0


RUN_COLUMNS = [
    "method",
    "lr",
    "steps",
    "flow time",
    "final drift",
    "relative",
    "max drift",
]


def _run_rows(runs: list[dict]) -> list[list]:
    """One row per (method, lr) run, in RUN_COLUMNS order (terminal and report.md)."""
    from ._report import number

    return [
        [
            r["method"],
            number(r["lr"]),
            r["n_steps"],
            number(r["flow_time"]),
            number(r["drift"]),
            number(r["relative_drift"]),
            number(r["max_drift"]),
        ]
        for r in runs
    ]


def _slope(fit: dict) -> str:
    from ._report import number

    return "round-off" if fit["at_round_off"] else number(fit["slope"])


def _theory(fit: dict) -> str:
    if fit["theory"] is None:
        return "no drift (corridor)"
    if method_info(fit["method"]).momentum:
        return f"{fit['theory']} (once lr ≪ (1 − β)/sharpness)"
    return str(fit["theory"])


def markdown(document: dict) -> str:
    from ._report import markdown_table, number

    settings, problem = document["settings"], document["problem"]
    where = (
        f"a fixed flow time T = {number(settings['horizon'])} (n = ⌊T/lr⌋ steps)"
        if settings["mode"] == "horizon"
        else f"{settings['steps']} steps for every lr"
    )
    return "\n".join(
        [
            "# corridors drift",
            "",
            f"{problem['description']} ({problem['parameters']} parameters). Reference: "
            f"the {'gradient' if settings['reference'] == 'flow' else 'modified'} flow; "
            f"{where}; momentum β = "
            f"{settings['beta']:g}; seed {settings['seed']}. Raw numbers in "
            "`drift.json`.",
            "",
            markdown_table(RUN_COLUMNS, _run_rows(document["runs"])),
            "",
            markdown_table(
                ["method", "fitted slope", "theory"],
                [[f["method"], _slope(f), _theory(f)] for f in document["fits"]],
            ),
            "",
            "![drift vs lr](drift_vs_lr.png)",
            "",
            "![drift along the run](drift_along_time.png)",
            "",
        ]
    )
