"""`corridors demo`: the tour of the library in one command.

Part 1 (analytic): on a cone GD, RK4 and momentum land on the exact gradient flow; on
a quadratic they drift with the predicted orders. Part 2 (a small network on digits):
corridor score and drift along training, drift vs lr from one flow solve, CLR against
a fixed-lr sweep. Part 3 (the edge of stability): full-batch GD on a squared loss at
a large lr against the gradient flow, the modified flow and the central flow. Writes
report.md, PNG figures and demo.json into --out.
"""

import argparse
import os
import pathlib
import time

from ._options import add_common_flags

NAME = "demo"
HELP = "tour of the library: corridors vs a quadratic, a network on digits, the edge of stability"
EXAMPLE = """\
examples:
  corridors demo                     # a few minutes; writes corridors-demo/
  corridors demo --fast --out /tmp/d # smaller problems, the same compilations
  corridors demo --json | jq .checks # the raw numbers, machine-readable

--fast (or CORRIDORS_DEMO_FAST=1) runs the same pipeline on smaller problems.
The exit code is 1 if a theorem check fails (it should not), 2 for bad flags."""

CONE_BOUND = 1e-9
REFERENCES = {
    "gd_one_step": "Thm 3.1: (h²/2)H∇L + O(h³)",
    "gd_horizon": "local order 2 ⇒ global order 1",
    "rk4_one_step": "RK4 local order 5",
    "rk4_horizon": "RK4 global order 4",
    "momentum_horizon": "heavy ball, global order 1",
}
FILES = (
    "report.md",
    "demo.json",
    "analytic_drift_vs_lr.png",
    "network_along_training.png",
    "network_drift_vs_lr.png",
    "clr_vs_fixed_lr.png",
    "edge_of_stability.png",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fast",
        action="store_true",
        default=os.environ.get("CORRIDORS_DEMO_FAST") == "1",
        help="smaller problems, for tests and a first look (also CORRIDORS_DEMO_FAST=1)",
    )
    add_common_flags(
        parser,
        out="corridors-demo",
        out_help="report folder (default: corridors-demo/)",
    )


def checks(analytic: dict, edge: dict) -> list[dict]:
    """The theorems the demo's numbers must satisfy."""
    cone = analytic["cone"]
    worst = max(max(values["max_drift"]) for values in cone["methods"].values())
    rows = [
        {
            "name": "cone: GD, RK4 and momentum stay on the flow",
            "reference": "Thm 3.1, A.2, Lemma A.1",
            "measured": worst,
            "expected": f"≤ {CONE_BOUND:g} (round-off ≈ {cone['round_off']:.1e})",
            "passed": worst <= CONE_BOUND,
        }
    ]
    quadratic = analytic["quadratic"]
    tolerance = quadratic["slope_tolerance"]
    for series in quadratic["series"]:
        rows.append(
            {
                "name": f"quadratic: {series['label']} drifts like h^{series['theory']}",
                "reference": REFERENCES.get(series["name"], ""),
                "measured": series["slope"],
                "expected": f"slope {series['theory']} ± {tolerance}",
                "passed": bool(series["passed"]),
            }
        )
    return rows + edge_checks(edge)


def edge_checks(edge: dict) -> list[dict]:
    """Part 3: the central flow holds the sharpness at 2/h, tracks every eigenvalue that
    gets there, and is the flow GD ends closest to."""
    from ._demo_edge import SHARPNESS_SLACK

    central, k = edge["central"], edge["k"]
    untracked = float(central["independent_eigenvalues"][k] / edge["edge"])
    final = edge["final_distance"]
    nearest_other = min(final["flow"], final["modified"])
    return [
        {
            "name": "edge: the central flow's sharpness stays ≤ 2/h",
            "reference": "Cohen et al. 2025, §3",
            "measured": central["max_sharpness_ratio"] - 1,
            "expected": f"max λ₁·h/2 − 1 ≤ {SHARPNESS_SLACK:g}",
            "passed": bool(central["max_sharpness_ratio"] <= 1 + SHARPNESS_SLACK),
        },
        {
            "name": f"edge: no eigenvalue past the {k} tracked reaches 2/h",
            "reference": "independent Lanczos at the end",
            "measured": untracked,
            "expected": f"λ_{k + 1}·h/2 < 1",
            "passed": bool(untracked < 1),
        },
        {
            "name": "edge: GD ends closer to the central flow than to GF and the "
            "modified flow",
            "reference": "Cohen et al. 2025, §4",
            "measured": nearest_other / final["central"],
            "expected": "distance ratio > 1",
            "passed": bool(final["central"] < nearest_other),
        },
    ]


def run(options: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from corridors.train import load_features

    from . import _analytic, _demo_edge, _demo_network, _figures
    from ._report import header, write_json
    from ._terminal import Terminal

    began = time.perf_counter()
    terminal = Terminal(quiet=options.quiet, json_mode=options.json)
    out: pathlib.Path = options.out
    out.mkdir(parents=True, exist_ok=True)  # fail before the work, not after it
    settings = _demo_network.FAST if options.fast else _demo_network.FULL
    data, warning = load_features(
        "digits", seed=options.seed, n_train=settings.n_train, n_test=settings.n_test
    )
    if warning:
        terminal.warning(warning)
    edge_settings = _demo_edge.FAST if options.fast else _demo_edge.FULL
    total = _analytic.STAGES + _demo_network.STAGES + _demo_edge.STAGES + 2
    timings = {}
    with terminal.progress(total, "analytic landscapes") as stage:
        start = time.perf_counter()
        analytic = _analytic.run(stage)
        timings["analytic"] = time.perf_counter() - start
        start = time.perf_counter()
        network = _demo_network.run(stage, data, settings, options.seed)
        timings["network"] = time.perf_counter() - start
        start = time.perf_counter()
        edge = _demo_edge.run(stage, data, edge_settings, options.seed)
        timings["edge"] = time.perf_counter() - start
        document = header(
            "corridors.demo",
            settings={"fast": options.fast, "seed": options.seed},
            analytic=analytic,
            network=network,
            edge=edge,
            checks=checks(analytic, edge),
            warnings=[warning] if warning else [],
        )
        stage("writing figures")
        figures = _figures.demo_figures(document, out)
        stage("writing the report")
        timings["total"] = time.perf_counter() - began
        document["seconds"] = timings
        document["files"] = [path.name for path in figures] + ["report.md", "demo.json"]
        write_json(out / "demo.json", document)
        (out / "report.md").write_text(markdown(document), encoding="utf-8")
    _print_tables(terminal, document)
    terminal.message(
        f"Report: [bold]{out / 'report.md'}[/bold] (figures and demo.json beside it); "
        f"{timings['total']:.0f} s."
    )
    terminal.emit_json({**document, "out": str(out)})
    failed = [check["name"] for check in document["checks"] if not check["passed"]]
    if failed:
        terminal.err.print(f"[red]theorem check failed:[/red] {'; '.join(failed)}")
        return 1
    return 0


def _analytic_rows(document: dict, number) -> list[list]:
    return [
        [
            check["name"],
            number(check["measured"]),
            check["expected"],
            "✓" if check["passed"] else "✗ FAILED",
        ]
        for check in document["checks"]
    ]


def _network_rows(network: dict, number) -> list[list]:
    training, sweep, clr = network["training"], network["sweep"], network["clr"]
    score = training["corridor_score"]
    runs = clr["runs"]
    fixed = [run for run in runs if run["optimizer"] != "clr"]
    clr_run = next(run for run in runs if run["optimizer"] == "clr")

    def final(run):
        value = run["loss"][-1]
        return (
            float("inf") if value is None or run["diverged_at"] is not None else value
        )

    best = min(fixed, key=final)
    return [
        ["data", network["data"]["description"]],
        [
            "model",
            f"tanh MLP {tuple(network['model']['layers'])}, "
            f"{network['model']['parameters']} parameters",
        ],
        [
            "corridor score ‖H∇L‖/‖∇L‖, start → end",
            f"{number(score[0])} → {number(score[-1])}",
        ],
        [
            f"GD (h = {training['lr']:g}) vs flow after {training['n_steps']} steps",
            f"{number(training['drift'][-1])} "
            f"(relative {number(training['relative_drift'][-1])})",
        ],
        [
            "loss: GD vs flow at the end",
            f"{number(training['loss_gd'][-1])} vs {number(training['loss_flow'][-1])}",
        ],
        [
            f"drift at T = {sweep['horizon']:g} vs lr (one flow solve)",
            f"slope {number(sweep['slope'])} (theory 1)",
        ],
        [
            f"CLR, {clr['steps']} SGD steps",
            f"loss {number(final(clr_run))}, test acc "
            f"{100 * clr_run['test_accuracy']:.1f}%",
        ],
        [
            f"best fixed lr ({best['name']})",
            f"loss {number(final(best))}, test acc {100 * best['test_accuracy']:.1f}%",
        ],
    ]


def _edge_rows(edge: dict, number) -> list[list]:
    gd, central, final = edge["gd"], edge["central"], edge["final_distance"]
    low, high = gd["late_sharpness_ratio"]
    onset = central["first_edge_step"]
    return [
        [
            "model",
            f"tanh MLP {tuple(edge['model']['layers'])}, "
            f"{edge['model']['parameters']} parameters, {edge['model']['loss']}, "
            f"{edge['data']['n_train']} digits",
        ],
        [
            f"GD sharpness ÷ (2/h), h = {edge['lr']:g}: start → max",
            f"{number(gd['sharpness'][0] / edge['edge'])} → "
            f"{number(gd['max_sharpness_ratio'])}",
        ],
        [
            f"GD sharpness ÷ (2/h), steps ≥ {3 * edge['n_steps'] // 4}",
            f"{number(low)} – {number(high)}",
        ],
        [
            f"GD loss rises in {gd['loss_increases']} of {edge['n_steps']} steps",
            f"{number(gd['loss'][0])} → {number(gd['loss'][-1])}",
        ],
        [
            "central flow: max sharpness ÷ (2/h) − 1",
            f"{number(central['max_sharpness_ratio'] - 1)}"
            + ("" if onset is None else f" (at the edge from step {onset})"),
        ],
        [
            f"GD's distance after {edge['n_steps']} steps: central / GF / modified",
            f"{number(final['central'])} / {number(final['flow'])} / "
            f"{number(final['modified'])}",
        ],
    ]


def _print_tables(terminal, document: dict) -> None:
    from ._report import number

    terminal.table(
        "Theorem checks (part 1: exact flows of a cone and a quadratic)",
        ["check", "measured", "expected", "ok"],
        _analytic_rows(document, number),
        right=["measured"],
    )
    terminal.table(
        "Part 2: a small network",
        ["quantity", "value"],
        _network_rows(document["network"], number),
    )
    terminal.table(
        "Part 3: the edge of stability",
        ["quantity", "value"],
        _edge_rows(document["edge"], number),
    )


def markdown(document: dict) -> str:
    """report.md: what was run, the numbers, the figures, the checks."""
    from ._report import markdown_table, number

    analytic, network, edge = (
        document["analytic"],
        document["network"],
        document["edge"],
    )
    cone, quadratic = analytic["cone"], analytic["quadratic"]
    settings = document["settings"]
    seconds = document["seconds"]
    series_rows = [
        [
            s["label"],
            " ".join(number(d) for d in s["drift"]),
            number(s["slope"]),
            s["theory"],
        ]
        for s in quadratic["series"]
    ]
    cone_worst = max(max(v["max_drift"]) for v in cone["methods"].values())
    cone_rows = [
        [method, " ".join(number(d) for d in values["max_drift"])]
        for method, values in cone["methods"].items()
    ]
    lines = [
        "# corridors demo",
        "",
        f"corridors {document['corridors_version']}, {document['created']}, "
        f"seed {settings['seed']}{', fast mode' if settings['fast'] else ''}; "
        f"{seconds['total']:.0f} s (analytic {seconds['analytic']:.1f} s, network "
        f"{seconds['network']:.1f} s, edge of stability {seconds['edge']:.1f} s). Raw numbers: `demo.json`; redraw the figures "
        "with `corridors plot <this folder>`.",
        "",
        *(f"> **Note:** {w}\n" for w in document.get("warnings", [])),
        "## 1. Corridors vs a quadratic, against the exact flow",
        "",
        f"On the corridor {cone['landscape']} (started 10 from its apex) every method "
        f"lands on the closed-form gradient flow, for every learning rate: the largest "
        f"distance over {cone['n_steps']} steps, {number(cone_worst)}, is round-off "
        f"(ε‖θ₀‖ = {cone['round_off']:.1e}; the steps add a few ulps each). Momentum "
        f"(β = {cone['beta']:g}, from rest) runs along the same line at flow time "
        "h·Σ(1 − β^j)/(1 − β) (Lemma A.1).",
        "",
        markdown_table(
            [
                "cone: method",
                "max drift at h = " + ", ".join(f"{h:.4g}" for h in cone["lrs"]),
            ],
            cone_rows,
        ),
        "",
        f"On {quadratic['landscape']} (no corridor: Appendix C) they drift with the "
        "orders of the theory: one GD step leaves the flow by (h²/2)H∇L + O(h³); at a "
        f"fixed flow time T = {quadratic['horizon']:g} the errors add up to O(h) for GD "
        f"and momentum (β = {quadratic['beta']:g}, so its start-up transient of ≈ "
        "1/(1 − β) steps is short against T/h), and O(h⁴) for RK4.",
        "",
        markdown_table(
            [
                "quadratic",
                "drift at h = " + ", ".join(f"{h:.4g}" for h in quadratic["lrs"]),
                "fitted slope",
                "theory",
            ],
            series_rows,
        ),
        "",
        "![drift vs learning rate](analytic_drift_vs_lr.png)",
        "",
        "## 2. A small network",
        "",
        f"Data: {network['data']['description']}; {network['data']['n_train']} training "
        f"and {network['data']['n_test']} test samples. Model: tanh MLP "
        f"{tuple(network['model']['layers'])} ({network['model']['parameters']} "
        f"parameters), {network['model']['loss']}.",
        "",
        markdown_table(["quantity", "value"], _network_rows(network, number)),
        "",
        "### Corridor score and drift along training",
        "",
        "Full-batch GD against the gradient flow from the same start (`measure_drift`); "
        "corridor score ‖H∇L‖/‖∇L‖ and predicted one-step drift (h²/2)‖H∇L‖ at "
        "checkpoints. As training proceeds the corridor score falls: the iterates move "
        "into a region where GD and the flow nearly agree.",
        "",
        "![along training](network_along_training.png)",
        "",
        "### Drift vs learning rate, one shared flow solve",
        "",
        f"`sweep_drift`: for each h, ⌊T/h⌋ GD steps against the flow at T = "
        f"{network['sweep']['horizon']:g}; one Dopri8 solve serves every h. Global "
        "order 1 predicts slope 1.",
        "",
        "![drift vs lr](network_drift_vs_lr.png)",
        "",
        "### CLR against fixed learning rates",
        "",
        "Minibatch SGD; CLR takes h_k = L_B/‖∇L_B‖² (the Polyak step with f* = 0, eq. 3), "
        f"capped at {network['clr']['max_lr']:g}; the fixed-lr runs share its batches.",
        "",
        markdown_table(
            ["run", "final training loss", "test accuracy", "diverged at step"],
            [
                [
                    run["name"],
                    number(run["loss"][-1]),
                    f"{100 * run['test_accuracy']:.1f}%"
                    if run["test_accuracy"] is not None
                    else "—",
                    "—" if run["diverged_at"] is None else run["diverged_at"],
                ]
                for run in network["clr"]["runs"]
            ],
        ),
        "",
        "![CLR vs fixed lr](clr_vs_fixed_lr.png)",
        "",
        "## 3. The edge of stability",
        "",
        f"Full-batch GD at h = {edge['lr']:g} on a squared loss ({edge['model']['loss']}; "
        f"{edge['data']['description']}, "
        f"{edge['data']['n_train']} samples; tanh MLP {tuple(edge['model']['layers'])}, "
        f"weights N(0, {edge['model']['init_scale']:g}²/fan-in)), against three flows "
        "from the same start at t = k·h: the gradient flow, the first-order modified "
        "flow θ' = −∇L − (h/2)H∇L, and the central flow (Cohen, Damian, Talwalkar, "
        "Kolter & Lee 2025), θ' = −[∇L + ½∇⟨Σ, H⟩] with Σ ⪰ 0 just large enough that "
        f"no eigenvalue passes 2/h (it tracks the top {edge['k']}; rtol "
        f"{edge['rtol']:g}, {edge['central']['evaluations']} field evaluations). GD's "
        "sharpness rises to 2/h (progressive sharpening), overshoots while GD's "
        "oscillation along the top eigenvector grows, and then hovers just above 2/h "
        "while the loss keeps falling, non-monotonically. The gradient flow and the "
        "modified flow (a series in h, valid while h·λ ≪ 1) leave GD there; the "
        "central flow models its time-average and predicts its averaged loss.",
        "",
        markdown_table(["quantity", "value"], _edge_rows(edge, number)),
        "",
        "![edge of stability](edge_of_stability.png)",
        "",
        "## Checks",
        "",
        markdown_table(
            ["check", "reference", "measured", "expected", "passed"],
            [
                [
                    c["name"],
                    c["reference"],
                    number(c["measured"]),
                    c["expected"],
                    "yes" if c["passed"] else "**NO**",
                ]
                for c in document["checks"]
            ],
        ),
        "",
    ]
    return "\n".join(lines)
