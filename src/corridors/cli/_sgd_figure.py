"""The figure of `corridors drift --method sgd`: SGD's distance to the gradient flow and
to its SMEs along the run, drawn from the JSON document alone.

Left panel: the distance of every path to the gradient flow, ‖θ(t) − φ(t)‖₂, its
mean over the paths (SGD solid with the 10–90% band of the paths, the SMEs of order 1
dashed and 2 dotted): where an SME models SGD, its curve lies on SGD's. Right panel:
SGD's distance to each SME in the weak sense, ‖E θ_SGD(t) − E Θ_SME(t)‖₂ over the paths,
with the Monte Carlo noise level √((tr Var θ_SGD + tr Var Θ_SME)/n) shaded: a gap
inside it is not resolved by n paths.
"""

import pathlib

import numpy as np

from ._report import floats, log_floor, number, pyplot, save_figure

STYLES = {"sgd": "-", 1: "--", 2: ":"}
FILE = "sgd_drift_along_time.png"


def along(sgd_ts, sgd_params, sgd_var, flow_params, smes) -> dict:
    """The curves of one lr: `sgd_params` / each SME's params are pytrees with leaves
    `(n_paths, len(ts), ...)`, `flow_params` leaves `(len(ts), ...)`, `smes` maps the
    order to `(params, variance)`."""
    import jax

    def to_flow(params):
        squares = sum(
            np.sum(
                (np.asarray(x) - np.asarray(f)[None]).reshape(*x.shape[:2], -1) ** 2, -1
            )
            for x, f in zip(
                jax.tree.leaves(params), jax.tree.leaves(flow_params), strict=True
            )
        )
        return np.sqrt(squares)  # (n_paths, len(ts))

    def mean_gap(a, b):
        squares = sum(
            np.sum(
                (np.asarray(x).mean(0) - np.asarray(y).mean(0)).reshape(x.shape[1], -1)
                ** 2,
                -1,
            )
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )
        return np.sqrt(squares)

    sgd = to_flow(sgd_params)
    n_paths = sgd.shape[0]
    curves = {
        "ts": np.asarray(sgd_ts),
        "sgd_to_flow": sgd.mean(0),
        "sgd_to_flow_low": np.quantile(sgd, 0.1, axis=0),
        "sgd_to_flow_high": np.quantile(sgd, 0.9, axis=0),
    }
    for order, (params, variance) in smes.items():
        curves[f"sme{order}_to_flow"] = to_flow(params).mean(0)
        curves[f"sgd_to_sme{order}"] = mean_gap(sgd_params, params)
        noise = (np.asarray(sgd_var) + np.asarray(variance)) / n_paths
        curves[f"noise{order}"] = np.sqrt(noise)
    return curves


def draw(document: dict):
    """The figure (a matplotlib Figure with panels labelled `to_flow` and `to_sme`)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = pyplot()
    settings, runs = document["settings"], document["runs"]
    n = settings["paths"]
    orders = [fit["sme_order"] for fit in document["fits"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.8))
    left.set_label("to_flow")
    right.set_label("to_sme")
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(runs)))
    noises = []
    for run, color in zip(runs, colors, strict=True):
        curves = run["along"]
        ts = floats(curves["ts"])[1:]  # t = 0: every path starts on the flow
        low = log_floor(floats(curves["sgd_to_flow_low"])[1:])
        high = log_floor(floats(curves["sgd_to_flow_high"])[1:])
        left.fill_between(ts, low, high, color=color, alpha=0.18, lw=0)
        left.plot(ts, log_floor(floats(curves["sgd_to_flow"])[1:]), "-", color=color)
        for order in orders:
            # Order 2 on top and wider: at small lr it lies on order 1.
            style, width = STYLES[order], 1.2 + 0.6 * (order - 1)
            for axes, name in (
                (left, f"sme{order}_to_flow"),
                (right, f"sgd_to_sme{order}"),
            ):
                axes.plot(
                    ts,
                    log_floor(floats(curves[name])[1:]),
                    style,
                    color=color,
                    lw=width,
                )
        noises.append((ts, np.fmax(*(floats(curves[f"noise{o}"])[1:] for o in orders))))
    # Shade each noise level down to below the lowest curve (not to the log floor).
    shown = [line.get_ydata() for line in right.get_lines()] + [v for _, v in noises]
    positive = np.concatenate([np.asarray(v, float).ravel() for v in shown])
    positive = positive[np.isfinite(positive) & (positive > 0)]
    bottom = 0.5 * positive.min() if positive.size else 1e-12
    for (ts, noise), color in zip(noises, colors, strict=True):
        right.fill_between(ts, bottom, np.fmax(noise, bottom), color=color,
                           alpha=0.12, lw=0)  # fmt: skip
    right.set_ylim(bottom=bottom)
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("flow time t = k·h (k SGD steps)")
        ax.grid(True, which="major", alpha=0.3)
    left.set_ylabel("distance to the gradient flow ‖θ(t) − φ(t)‖₂")
    left.set_title("To the gradient flow: mean over paths")
    right.set_ylabel("‖E θ_SGD(t) − E Θ_SME(t)‖₂ (parameter units)")
    right.set_title("SGD to its SME (weak): distance of the means")
    where = (
        f"T = {number(settings['horizon'])}"
        if settings["mode"] == "horizon"
        else f"{settings['steps']} steps"
    )
    fig.suptitle(
        f"SGD (batch {settings['batch_size']}) vs its stochastic modified equations "
        f"on {document['problem']['name']} ({where})"
    )
    handles = [
        Line2D([], [], color=color, lw=2.0,
               label=f"h = {number(run['lr'])} ({run['n_steps']} steps)")
        for run, color in zip(runs, colors, strict=True)
    ]  # fmt: skip
    handles += [
        Line2D([], [], color="black", ls="-", label=f"SGD (n = {n} paths)"),
        Patch(color="black", alpha=0.18, label="SGD: 10–90% of the paths"),
        *(
            Line2D([], [], color="black", ls=STYLES[order],
                   label=f"SME of order {order} (n = {n} paths)")
            for order in orders
        ),
        Patch(color="black", alpha=0.12,
              label=f"Monte Carlo noise level of the gap (n = {n})"),
    ]  # fmt: skip
    fig.tight_layout(rect=(0, 0.0, 1, 0.95))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        fontsize=8,
    )
    return fig


def write(document: dict, out: pathlib.Path) -> pathlib.Path:
    return save_figure(draw(document), out / FILE)
