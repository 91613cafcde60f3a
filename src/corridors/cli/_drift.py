"""`corridors drift`: how far discrete methods drift from the gradient flow (or another
reference flow of GD: modified flows of order 1-3, the principal flow, the central flow)
on a landscape or a model on a data set, for a list of learning rates.

For each method and lr it runs `corridors.measure_drift` for n steps, n = ⌊T/lr⌋ at a
fixed horizon T (default) or n = --steps, and reports the final distance, the relative
drift, the fitted log-log slope against lr and the slope the theory predicts. Writes
drift.json, report.md and two figures into --out.

`--method sgd` instead compares SGD (`corridors.sgd_paths`, --paths runs with batch
size --batch-size) with its stochastic modified equations of order 1 and 2
(`corridors.sgd_sde`): the weak error in the loss at the last step
(`corridors.weak_error`) per lr, and its fitted order, and along the run the paths'
mean distance to the gradient flow and the distance between SGD's and each SME's
mean. Writes drift.json, report.md and sgd_drift_along_time.png.
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
    refuse_failure,
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
  corridors drift --reference modified2 --steps 1        # ... of order 2: slope 4
  corridors drift --reference central --lr 0.2 0.1       # GD vs the central flow
  corridors drift --model mlp --dataset digits --json > drift.json
  corridors drift --model mlp --dataset folder --data-dir DIR   # DIR/data.npz: x, y
  corridors drift --model mlp --method sgd --batch-size 32 --paths 256  # SGD vs SME

Default lrs: 0.2, 0.1, 0.05, 0.025 times the problem's lr scale (1e-3 on Rosenbrock);
default horizon: that scale. Each distinct step count compiles once (--steps N: one
compile per method)."""

SGD = "sgd"
METHODS = (*METHOD_NAMES, SGD)
REFERENCES = ("flow", "modified", "modified2", "modified3", "principal", "central")
REFERENCE_NAMES = {
    "flow": "gradient flow",
    "modified": "modified flow (order 1)",
    "modified2": "modified flow (order 2)",
    "modified3": "modified flow (order 3)",
    "principal": "principal flow",
    "central": "central flow",
}
MODIFIED_ORDERS = {"modified": 1, "modified2": 2, "modified3": 3}
MAX_STEPS = 1_000_000
"""The most steps one (method, lr) run may take: a smaller lr is refused up front."""
DEFAULT_LRS = (0.2, 0.1, 0.05, 0.025)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from corridors.train._names import CLASSIFIERS as MODELS
    from corridors.train._names import FEATURE_DATASETS as DATASETS

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
        help=f"one or more of {', '.join(METHOD_NAMES)}, or {SGD} alone (SGD vs "
        "its SME, on --model only) (default: gd)",
    )
    how.add_argument(
        "--reference",
        choices=REFERENCES,
        default="flow",
        help="the gradient flow, or a flow of GD at each lr (gd/euler only): the "
        "modified flow of order 1, 2 or 3, the principal flow or the central flow "
        "(default: flow)",
    )
    how.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="B",
        help="--method sgd: examples per step, 1 ≤ B ≤ --train-size (default: 32)",
    )
    how.add_argument(
        "--paths",
        type=positive_int,
        default=None,
        metavar="P",
        help="--method sgd: independent SGD and SME paths (default: 128)",
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
    """The log-log slope the theory predicts, None where it predicts none: in a
    corridor (no drift at all against the flow or a modified flow, whose corrections
    all vanish with H∇L) or against the principal and central flows.

    GD tracks its modified flow of order p to O(h^(p+1)) at a fixed horizon and
    O(h^(p+2)) over one step; the gradient flow is the case p = 0 for GD."""
    local = int(mode == "steps")
    info = method_info(method)
    if reference == "flow":
        return None if corridor else info.drift_order("flow", local=bool(local))
    if corridor or reference not in MODIFIED_ORDERS or not info.modified_flow:
        return None
    return MODIFIED_ORDERS[reference] + 1 + local


def matched_end_time(method: str, lr: float, n: int, beta: float) -> float:
    """The flow time `method` reaches after n steps along a corridor."""
    from .._methods import matched_times

    return float(matched_times(method, lr, n, beta=beta)[-1])


def _plan(options, problem) -> tuple[list[float], str, float | None, dict]:
    """lrs, mode, horizon, and the step count for every lr; refuses what cannot run."""
    lrs = options.lrs or [problem.lr_scale * f for f in DEFAULT_LRS]
    if options.reference != "flow":
        bad = [m for m in options.methods if not method_info(m).modified_flow]
        if bad:
            raise UsageError(
                f"--reference {options.reference} is a flow of GD at each lr; not "
                f"defined for {', '.join(bad)} (use --method gd or euler)."
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
            count = f"{n:,}" if n < 10**15 else f"{float(n):.3g}"
            raise UsageError(
                f"--lr {lr:g} needs {count} steps per run, more than the budget of "
                f"{MAX_STEPS:,}; raise the lr or lower --horizon/--steps."
            )
    if problem.apex_time is not None and SGD not in options.methods:
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
    from ._report import downsample, fit_slope, header, write_json
    from ._terminal import Terminal

    began = time.perf_counter()
    terminal = Terminal(quiet=options.quiet, json_mode=options.json)
    if options.model is None and (options.dataset or options.data_dir):
        raise UsageError("--dataset and --data-dir go with --model (e.g. --model mlp).")
    if options.data_dir is not None and options.dataset not in (None, "folder"):
        raise UsageError("--data-dir is for --dataset folder.")
    sgd = SGD in options.methods
    if sgd:
        _check_sgd_options(options)
    elif options.batch_size is not None or options.paths is not None:
        raise UsageError("--batch-size and --paths go with --method sgd.")
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
    if sgd:
        _batch_size(options, problem)  # refused before the --out folder is made
    lrs, mode, horizon, steps = _plan(options, problem)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)  # fail before the work, not after it
    if sgd:
        return _run_sgd(options, problem, terminal, lrs, mode, horizon, steps, began)

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
                refuse_failure(
                    drift.result, f"{method} at lr {lr:g} ({steps[lr]} steps)"
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
        f"Drift from the {REFERENCE_NAMES[options.reference]}: {problem.description}",
        RUN_COLUMNS,
        _run_rows(runs),
        right=RUN_COLUMNS[1:],
    )
    terminal.table(
        "Fitted order: slope of log drift vs log lr",
        ["method", "slope", "theory"],
        [[f["method"], _slope(f), _theory(f, document)] for f in fits],
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


def _theory(fit: dict, document: dict) -> str:
    if fit["theory"] is None:
        corridor = document["problem"]["corridor"]
        known = document["settings"]["reference"] in ("flow", *MODIFIED_ORDERS)
        return "no drift (corridor)" if corridor and known else "not predicted"
    if method_info(fit["method"]).momentum:
        return f"{fit['theory']} (once lr ≪ (1 − β)/sharpness)"
    return str(fit["theory"])


def _where_read(settings: dict) -> str:
    """Where the drift is read, in words (for the reports)."""
    from ._report import number

    if settings["mode"] == "horizon":
        return f"a fixed flow time T = {number(settings['horizon'])} (n = ⌊T/lr⌋ steps)"
    return f"{settings['steps']} steps for every lr"


def markdown(document: dict) -> str:
    from ._report import markdown_table

    settings, problem = document["settings"], document["problem"]
    where = _where_read(settings)
    return "\n".join(
        [
            "# corridors drift",
            "",
            f"{problem['description']} ({problem['parameters']} parameters). Reference: "
            f"the {REFERENCE_NAMES[settings['reference']]}; "
            f"{where}; momentum β = "
            f"{settings['beta']:g}; seed {settings['seed']}. Raw numbers in "
            "`drift.json`.",
            "",
            markdown_table(RUN_COLUMNS, _run_rows(document["runs"])),
            "",
            markdown_table(
                ["method", "fitted slope", "theory"],
                [
                    [f["method"], _slope(f), _theory(f, document)]
                    for f in document["fits"]
                ],
            ),
            "",
            "![drift vs lr](drift_vs_lr.png)",
            "",
            "![drift along the run](drift_along_time.png)",
            "",
        ]
    )


# --------------------------------------------------------------------- --method sgd

DEFAULT_BATCH_SIZE = 32
DEFAULT_PATHS = 128
SME_ORDERS = (1, 2)


def _check_sgd_options(options: argparse.Namespace) -> None:
    """Refuse what `--method sgd` cannot combine with (before any data is loaded)."""
    if len(options.methods) > 1:
        raise UsageError(
            "--method sgd runs alone (SGD against its SME); measure "
            f"{', '.join(m for m in options.methods if m != SGD)} in another call."
        )
    if options.reference != "flow":
        raise UsageError(
            "--reference is for the deterministic methods; --method sgd compares SGD "
            "with its stochastic modified equations of order 1 and 2."
        )
    if options.model is None:
        raise UsageError(
            f"--method sgd needs data to draw batches from; the landscape "
            f"{options.landscape or 'quadratic'} has none: use a model on a data set "
            "(e.g. --model mlp --dataset digits)."
        )


def _batch_size(options: argparse.Namespace, problem) -> int:
    """--batch-size (default: 32 or N if smaller), refused above N."""
    n = int(problem.args[0].shape[0])
    batch_size = options.batch_size or min(DEFAULT_BATCH_SIZE, n)
    if batch_size > n:
        raise UsageError(
            f"--batch-size {batch_size} is above the {n} training examples of "
            f"{problem.name}; use 1 ≤ B ≤ {n}."
        )
    return batch_size


SAVES = 16
"""--method sgd saves the paths at most this many times after the start (every d-th
step, d the smallest divisor of the step count that fits) for the figure."""


def save_every(n_steps: int) -> int:
    """The smallest divisor d of `n_steps` with n_steps/d ≤ SAVES."""
    return next(
        d for d in range(1, n_steps + 1) if n_steps % d == 0 and n_steps // d <= SAVES
    )


def _run_sgd(options, problem, terminal, lrs, mode, horizon, steps, began) -> int:
    """SGD vs its SME of order 1 and 2: the weak error in the loss at the last step."""
    import jax

    import corridors as cr

    from . import _sgd_figure
    from ._report import fit_slope, header, write_json

    data = problem.args
    n = int(data[0].shape[0])
    batch_size = _batch_size(options, problem)
    n_paths = options.paths or DEFAULT_PATHS
    # sgd_paths / sgd_sde take loss(params, batch) with batch = (x, y).
    loss = lambda params, batch: problem.loss(params, *batch)  # noqa: E731
    key_sgd, key_sme = jax.random.split(jax.random.key(options.seed))
    runs = []
    with terminal.progress(len(lrs) * (1 + len(SME_ORDERS)) + 1, "sgd") as stage:
        for i, lr in enumerate(lrs):
            stage(f"SGD, lr {lr:g}, {steps[lr]} steps × {n_paths} paths")
            sgd = cr.sgd_paths(
                loss, problem.params0, lr, data, batch_size=batch_size,
                n_steps=steps[lr], every=save_every(steps[lr]),
                key=jax.random.fold_in(key_sgd, i), n_paths=n_paths, throw=False,
            )  # fmt: skip
            refuse_failure(sgd.result, f"SGD at lr {lr:g} ({steps[lr]} steps)")
            flow = cr.gradient_flow(
                problem.loss, problem.params0, sgd.ts, problem.args, throw=False
            )
            refuse_failure(
                flow.result, f"the gradient flow to t = {float(sgd.ts[-1]):g}"
            )
            smes = {}
            run = {
                "lr": lr,
                "n_steps": steps[lr],
                "flow_time": float(sgd.ts[-1]),
                "loss_sgd": float(sgd.mean_loss[-1]),
            }
            for order in SME_ORDERS:
                stage(f"SME of order {order}, lr {lr:g}")
                # The same noise for both orders: their difference is then sharper.
                sme = cr.sgd_sde(
                    loss, problem.params0, sgd.ts, lr, data, batch_size=batch_size,
                    order=order, key=jax.random.fold_in(key_sme, i), n_paths=n_paths,
                    throw=False,
                )  # fmt: skip
                refuse_failure(sme.result, f"the order-{order} SME at lr {lr:g}")
                smes[order] = (sme.params, sme.variance)
                weak = cr.weak_error(sgd, sme, "loss")
                run[f"loss_sme{order}"] = float(sme.mean_loss[-1])
                run[f"weak_error{order}"] = float(weak.error[-1])
                run[f"half_width{order}"] = float(weak.half_width[-1])
            run["along"] = _sgd_figure.along(
                sgd.ts, sgd.params, sgd.variance, flow.params, smes
            )
            runs.append(run)
        fits = []
        for order in SME_ORDERS:
            errors = [run[f"weak_error{order}"] for run in runs]
            resolved = sum(
                run[f"weak_error{order}"] > run[f"half_width{order}"] for run in runs
            )
            fits.append(
                {
                    "sme_order": order,
                    "slope": fit_slope(lrs, errors) if min(errors) > 0 else None,
                    "theory": order,
                    "resolved": resolved,  # lrs whose error exceeds the 99% interval
                }
            )
        # Its own kind: `corridors plot` draws distances, which this has none of.
        document = header(
            "corridors.drift.sgd",
            problem={
                "name": problem.name,
                "description": problem.description,
                "parameters": problem.parameters,
                "corridor": problem.corridor,
                "examples": n,
            },
            settings={
                "lrs": lrs,
                "methods": [SGD],
                "reference": "sme",
                "batch_size": batch_size,
                "paths": n_paths,
                "level": 0.99,
                "mode": mode,
                "horizon": horizon,
                "steps": options.steps,
                "seed": options.seed,
            },
            runs=runs,
            fits=fits,
        )
        stage("writing the report")
        figure = _sgd_figure.write(document, options.out)
        document["seconds"] = time.perf_counter() - began
        document["files"] = [figure.name, "report.md", "drift.json"]
        out = options.out
        write_json(out / "drift.json", document)
        (out / "report.md").write_text(sgd_markdown(document), encoding="utf-8")

    terminal.table(
        f"SGD (B = {batch_size}, {n_paths} paths) vs its SME, weak error in the loss "
        f"at the last step: {problem.description}",
        SGD_COLUMNS,
        _sgd_rows(runs),
        right=SGD_COLUMNS[1:],
    )
    terminal.table(
        "Fitted weak order: slope of log weak error vs log lr",
        SGD_FIT_COLUMNS,
        _sgd_fit_rows(document),
    )
    terminal.message(f"Report: [bold]{out / 'report.md'}[/bold]; figure beside it.")
    terminal.emit_json({**document, "out": str(out)})
    return 0


SGD_COLUMNS = [
    "lr",
    "steps",
    "E loss SGD",
    "E loss SME1",
    "E loss SME2",
    "weak error 1",
    "± (99%)",
    "weak error 2",
    "± (99%)",
]
SGD_FIT_COLUMNS = ["SME order", "slope", "theory", "lrs resolved"]


def _sgd_rows(runs: list[dict]) -> list[list]:
    from ._report import number

    return [
        [
            number(r["lr"]),
            r["n_steps"],
            number(r["loss_sgd"]),
            number(r["loss_sme1"]),
            number(r["loss_sme2"]),
            number(r["weak_error1"]),
            number(r["half_width1"]),
            number(r["weak_error2"]),
            number(r["half_width2"]),
        ]
        for r in runs
    ]


def _sgd_fit_rows(document: dict) -> list[list]:
    from ._report import number

    total = len(document["runs"])
    return [
        [
            f["sme_order"],
            "—" if f["slope"] is None else number(f["slope"]),
            f["theory"],
            f"{f['resolved']}/{total}",
        ]
        for f in document["fits"]
    ]


def sgd_markdown(document: dict) -> str:
    from ._report import markdown_table

    settings, problem = document["settings"], document["problem"]
    where = _where_read(settings)
    return "\n".join(
        [
            "# corridors drift --method sgd",
            "",
            f"{problem['description']} ({problem['parameters']} parameters). SGD with "
            f"batch size {settings['batch_size']} (drawn with replacement) against its "
            f"stochastic modified equations of order 1 and 2, {settings['paths']} "
            f"paths each; {where}; seed {settings['seed']}. The weak error is "
            "|E L(SGD) − E L(SME)| at the last step, ± the half-width of its 99% "
            "interval: an error inside it is Monte Carlo noise. Raw numbers in "
            "`drift.json`.",
            "",
            markdown_table(SGD_COLUMNS, _sgd_rows(document["runs"])),
            "",
            markdown_table(SGD_FIT_COLUMNS, _sgd_fit_rows(document)),
            "",
            "Along the run (left): the mean distance of the paths to the gradient "
            "flow, SGD with the 10–90% band of its paths; where an SME models SGD its "
            "curve lies on SGD's. Right: the distance between SGD's and each SME's "
            "mean, against the Monte Carlo noise level of that gap (shaded).",
            "",
            "![SGD vs its SME along the run](sgd_drift_along_time.png)",
            "",
        ]
    )
