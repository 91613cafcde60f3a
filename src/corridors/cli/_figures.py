"""The figures of the demo and drift reports, drawn from their JSON documents alone
(so `corridors plot` can redraw them without recomputing anything)."""

import pathlib

import numpy as np

from ._report import floats, log_floor, number, pyplot, save_figure

DISTANCE = "distance to the flow ‖θ − φ‖₂ (parameter units)"
LEARNING_RATE = "learning rate h (flow time per step)"


def _guide(ax, xs, ys, order, color):
    """A dotted line of slope `order` through the smallest-lr point."""
    xs, ys = np.asarray(xs, float), floats(ys)
    keep = np.isfinite(ys) & (ys > 0)
    if order is None or not keep.any():
        return
    i = int(np.argmin(np.where(keep, xs, np.inf)))
    grid = np.geomspace(xs[keep].min(), xs[keep].max(), 20)
    ax.plot(grid, ys[i] * (grid / xs[i]) ** order, ":", color=color, lw=1.0)


def _lr_ticks(ax, lrs) -> None:
    """Label the learning rates themselves on a log x axis (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    lrs = sorted({float(lr) for lr in lrs})
    ax.xaxis.set_major_locator(FixedLocator(lrs))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(lrs, [f"{lr:.3g}" for lr in lrs], rotation=30 if len(lrs) > 6 else 0)


def _slope_text(slope, theory) -> str:
    measured = "—" if slope is None else f"{slope:.2f}"
    return f"slope {measured}" + ("" if theory is None else f" (theory {theory})")


def analytic(analytic: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.2, 7.4))
    quadratic, cone = analytic["quadratic"], analytic["cone"]
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, 4))
    plotted = [s for s in quadratic["series"] if s.get("plotted", True)]
    for series, color in zip(plotted, colors, strict=False):
        label = f"quadratic, {series['label']}: {_slope_text(series['slope'], series['theory'])}"
        ax.plot(
            quadratic["lrs"], log_floor(series["drift"]), "o-", color=color, label=label
        )
        _guide(ax, quadratic["lrs"], series["drift"], series["theory"], color)
    markers = {
        "gd": ("s", "crimson"),
        "rk4": ("D", "darkorange"),
        "momentum": ("^", "purple"),
    }
    names = {"gd": "GD", "rk4": "RK4", "momentum": f"momentum β = {cone['beta']:g}"}
    for method, values in cone["methods"].items():
        marker, color = markers.get(method, ("x", "black"))
        ax.plot(
            cone["lrs"],
            log_floor(values["max_drift"]),
            marker + "--",
            color=color,
            alpha=0.85,
            ms=8 if method == "gd" else 5,
            mfc="none",
            label=f"cone (corridor), {names.get(method, method)}: max over "
            f"{cone['n_steps']} steps",
        )
    ax.axhline(
        cone["round_off"],
        color="gray",
        lw=1.0,
        ls="-.",
        label=f"round-off ε‖θ₀‖ = {cone['round_off']:.1e}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-17, 10.0)
    _lr_ticks(ax, quadratic["lrs"])
    ax.set_xlabel(LEARNING_RATE)
    ax.set_ylabel(DISTANCE)
    ax.set_title(
        "Drift from the exact gradient flow: cone (corridor) vs quadratic\n"
        "dotted: the theory's slope through the smallest lr"
    )
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, path)


def network_training(network: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    training = network["training"]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8.6), sharex=True)
    steps = np.asarray(training["step"])
    ax = axes[0]
    ax.plot(steps, floats(training["loss_gd"]), lw=2.0, label="gradient descent")
    ax.plot(
        steps, floats(training["loss_flow"]), "--", lw=1.5, label="gradient flow φ(kh)"
    )
    ax.set_yscale("log")
    ax.set_ylabel("training loss (nats)")
    ax.set_title(
        f"{network['data']['name']}: tanh MLP {tuple(network['model']['layers'])}, "
        f"full-batch GD at h = {training['lr']:g} vs its gradient flow"
    )
    ax.legend(fontsize=8)
    ax = axes[1]
    at = np.asarray(training["checkpoint_step"])
    ax.plot(at, floats(training["corridor_score"]), "o-", color="darkgreen")
    ax.set_yscale("log")
    ax.set_ylabel("corridor score ‖H∇L‖/‖∇L‖\n(1 / flow-time units)")
    ax.set_title("corridor score along training (0 in a corridor)", fontsize=10)
    ax = axes[2]
    ax.plot(
        steps[1:],
        log_floor(floats(training["drift"])[1:]),
        color="crimson",
        label="measured ‖θ_k − φ(kh)‖",
    )
    ax.plot(
        at,
        log_floor(floats(training["predicted_step_drift"])),
        "o",
        color="black",
        mfc="none",
        label="predicted one-step drift (h²/2)‖H∇L‖",
    )
    ax.set_yscale("log")
    ax.set_xlabel("GD step k (flow time t = k·h)")
    ax.set_ylabel("distance (parameter units)")
    ax.set_title("drift of GD from the gradient flow", fontsize=10)
    ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


def network_sweep(network: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    sweep = network["sweep"]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.plot(
        sweep["lrs"],
        log_floor(sweep["drift"]),
        "o-",
        color="tab:blue",
        label=f"GD after ⌊T/h⌋ steps: {_slope_text(sweep['slope'], sweep['theory'])}",
    )
    _guide(ax, sweep["lrs"], sweep["drift"], sweep["theory"], "tab:blue")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _lr_ticks(ax, sweep["lrs"])
    ax.set_xlabel(LEARNING_RATE)
    ax.set_ylabel(DISTANCE)
    ax.set_title(
        f"Network drift at flow time T = {sweep['horizon']:g} vs learning rate\n"
        "one shared gradient-flow solve (sweep_drift); dotted: slope 1"
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, path)


def _clipped(losses: np.ndarray) -> np.ndarray:
    """Diverged runs are drawn until they blow up."""
    start = losses[0] if losses.size and np.isfinite(losses[0]) else 1.0
    return np.where(np.isfinite(losses) & (losses < 1e3 * start), losses, np.nan)


def clr(network: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    clr_doc = network["clr"]
    runs = clr_doc["runs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.0))
    fixed = [run for run in runs if run["optimizer"] != "clr"]
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(fixed), 1)))
    for run, color in zip(fixed, colors, strict=False):
        losses = floats(run["loss"])
        note = (
            "" if run["diverged_at"] is None else f", diverged at {run['diverged_at']}"
        )
        left.plot(
            np.arange(losses.size),
            _clipped(losses),
            color=color,
            lw=1.2,
            label=f"{run['name']} (test acc {_percent(run['test_accuracy'])}{note})",
        )
        right.axhline(run["lr"], color=color, ls="--", lw=1.0, label=run["name"])
    for run in runs:
        if run["optimizer"] != "clr":
            continue
        losses = floats(run["loss"])
        left.plot(
            np.arange(losses.size),
            _clipped(losses),
            color="crimson",
            lw=2.2,
            label=f"{run['name']} (test acc {_percent(run['test_accuracy'])})",
        )
        trace = floats(run["lr_trace"])
        right.plot(
            np.arange(trace.size),
            trace,
            color="crimson",
            lw=0.7,
            alpha=0.5,
            label=f"{run['name']}: per step",
        )
        window = max(1, trace.size // 25)
        smooth = np.convolve(trace, np.ones(window) / window, mode="valid")
        right.plot(
            np.arange(window - 1, trace.size),
            smooth,
            color="darkred",
            lw=2.0,
            label=f"{run['name']}: h_k = L_B/‖∇L_B‖² (running mean)",
        )
    left.set_yscale("log")
    left.set_xlabel(f"SGD step (batch size {clr_doc['batch_size']})")
    left.set_ylabel("full training-set loss (nats)")
    left.set_title("CLR vs fixed learning rates: training loss")
    left.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    right.set_yscale("log")
    right.set_xlabel(f"SGD step (batch size {clr_doc['batch_size']})")
    right.set_ylabel("learning rate h (flow time per step)")
    right.set_title("learning rate: chosen by CLR vs fixed")
    right.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


EDGE_COLORS = {"central": "crimson", "flow": "tab:blue", "modified": "tab:green"}
EDGE_NAMES = {
    "central": "central flow",
    "flow": "gradient flow",
    "modified": "modified flow (order 1)",
}


def edge_of_stability(edge: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    steps = np.asarray(edge["step"])
    gd = edge["gd"]
    lr, two_over_h = edge["lr"], edge["edge"]
    onset = edge["central"]["first_edge_step"]
    ax = axes[0]
    losses = floats(gd["loss"])
    ax.plot(np.arange(losses.size), losses, color="0.65", lw=0.9, label="GD, each step")
    ax.plot(
        floats(gd["window_step"]),
        floats(gd["window_loss"]),
        color="black",
        lw=1.8,
        label=f"GD, mean over {gd['window']} steps",
    )
    ax.plot(
        steps,
        floats(edge["central"]["predicted_loss"]),
        "o-",
        ms=3.5,
        color=EDGE_COLORS["central"],
        label="central flow: predicted GD loss L(θ̄) + ½⟨Σ, H⟩",
    )
    for name, style in (("flow", "--"), ("modified", "-.")):
        ax.plot(
            steps,
            floats(edge[name]["loss"]),
            style,
            color=EDGE_COLORS[name],
            lw=1.5,
            label=f"{EDGE_NAMES[name]}: loss",
        )
    ax.set_yscale("log")
    ax.set_ylabel("training loss (½ MSE)")
    ax.set_title(
        f"Edge of stability: full-batch GD at h = {lr:g} on {edge['data']['n_train']} "
        f"digits, tanh MLP {tuple(edge['model']['layers'])}\n"
        "GD's loss falls non-monotonically; the central flow predicts its average",
        fontsize=10,
    )
    ax = axes[1]
    ax.plot(steps, floats(gd["sharpness"]), "o-", ms=3.5, color="0.35", label="GD")
    ax.plot(
        steps,
        floats(edge["central"]["sharpness"]),
        "o-",
        ms=3.5,
        color=EDGE_COLORS["central"],
        label=f"central flow (tracks the top {edge['k']} eigenvalues)",
    )
    ax.axhline(
        two_over_h, color="black", ls="--", lw=1.2, label=f"2/h = {two_over_h:g}"
    )
    ax.set_ylabel("sharpness λ_max(H)\n(1 / flow-time units)")
    ax.set_title(
        "GD's sharpness rises past 2/h, overshoots, then hovers just above it; "
        "the central flow's stays ≤ 2/h",
        fontsize=10,
    )
    ax = axes[2]
    for name in ("central", "flow", "modified"):
        ax.plot(
            steps,
            floats(edge["distance"][name]),
            "o-",
            ms=3.5,
            color=EDGE_COLORS[name],
            label=f"to the {EDGE_NAMES[name]}",
        )
    ax.set_xlabel("GD step k (flow time t = k·h)")
    ax.set_ylabel("‖θ_k − reference(kh)‖₂\n(parameter units)")
    ax.set_title("distance of GD from each flow, from the same start", fontsize=10)
    for ax in axes:
        if onset is not None:
            ax.axvline(onset, color="crimson", lw=0.8, alpha=0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if onset is not None:
        axes[1].annotate(
            "central flow reaches 2/h",
            (onset, two_over_h),
            xytext=(4, -26),
            textcoords="offset points",
            fontsize=8,
            color="crimson",
        )
    return save_figure(fig, path)


# File name -> (the part of the document it draws, the function drawing it).
DEMO_FIGURES = {
    "analytic_drift_vs_lr.png": ("analytic", analytic),
    "network_along_training.png": ("network", network_training),
    "network_drift_vs_lr.png": ("network", network_sweep),
    "clr_vs_fixed_lr.png": ("network", clr),
    "edge_of_stability.png": ("edge", edge_of_stability),
}


def demo_figures(document: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Every figure of a demo document (parts that are absent are skipped)."""
    return [
        draw(document[part], out / name)
        for name, (part, draw) in DEMO_FIGURES.items()
        if document.get(part)
    ]


def drift_vs_lr(document: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 5.2))
    fits = {fit["method"]: fit for fit in document["fits"]}
    methods = list(fits)
    colors = plt.cm.tab10(np.arange(len(methods)) % 10)
    for method, color in zip(methods, colors, strict=True):
        runs = [run for run in document["runs"] if run["method"] == method]
        lrs = [run["lr"] for run in runs]
        values = [run["drift"] for run in runs]
        fit = fits[method]
        ax.plot(
            lrs,
            log_floor(values),
            "o-",
            color=color,
            label=f"{method}: {_slope_text(fit['slope'], fit['theory'])}",
        )
        _guide(ax, lrs, values, fit["theory"], color)
    settings = document["settings"]
    ax.set_xscale("log")
    ax.set_yscale("log")
    _lr_ticks(ax, [run["lr"] for run in document["runs"]])
    ax.set_xlabel(LEARNING_RATE)
    ax.set_ylabel(f"final distance to the {_reference(settings)} (parameter units)")
    where = (
        f"fixed horizon T = {number(settings['horizon'])}"
        if settings["mode"] == "horizon"
        else f"after {settings['steps']} steps"
    )
    ax.set_title(
        f"Drift vs learning rate on {document['problem']['name']} ({where})\n"
        f"reference: the {_reference(settings)}; dotted: the theory's slope"
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, path)


def _reference(settings: dict) -> str:
    return "gradient flow" if settings["reference"] == "flow" else "modified flow"


def drift_along(document: dict, path: pathlib.Path) -> pathlib.Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 5.2))
    lrs = sorted({run["lr"] for run in document["runs"]})
    colors = dict(
        zip(lrs, plt.cm.plasma(np.linspace(0.0, 0.85, len(lrs))), strict=True)
    )
    styles = ["-", "--", ":", "-."]
    methods = list(dict.fromkeys(run["method"] for run in document["runs"]))
    for run in document["runs"]:
        ts, distance = floats(run["ts"]), floats(run["distance"])
        style = styles[methods.index(run["method"]) % len(styles)]
        ax.plot(
            ts[1:],
            log_floor(distance[1:]),
            style,
            color=colors[run["lr"]],
            label=f"{run['method']}, h = {number(run['lr'])}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("flow time t (matched to each iterate)")
    ax.set_ylabel(
        f"distance to the {_reference(document['settings'])} (parameter units)"
    )
    ax.set_title(f"Drift along the run on {document['problem']['name']}")
    ax.legend(
        fontsize=7.5,
        ncol=min(4, len(methods) * len(lrs)),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
    )
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, path)


def drift_figures(document: dict, out: pathlib.Path) -> list[pathlib.Path]:
    return [
        drift_vs_lr(document, out / "drift_vs_lr.png"),
        drift_along(document, out / "drift_along_time.png"),
    ]
