"""Demo part 1: discrete methods against the exact gradient flow of analytic landscapes.

On a cone (a corridor) GD, RK4 and heavy-ball momentum land on the closed-form flow up
to round-off, for every learning rate. On a quadratic (no corridor, Appendix C) they
drift with the orders of the theory: GD one step h², GD at a fixed horizon h, RK4 at a
fixed horizon h⁴, momentum at a fixed horizon h.

Every learning rate runs the same static number of steps, so each method compiles once;
the fixed-horizon drift is read at step k = T/h of that run.
"""

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

import corridors as cr
from corridors.landscapes import Cone, Quadratic

from ._options import refuse_failure

LRS = tuple(1.0 / k for k in (16, 32, 64, 128, 256))
HORIZON = 1.0
CONE_STEPS = 32
CONE_BETA = 0.9
QUADRATIC_BETA = 0.5
METHODS = ("gd", "rk4", "momentum")

# (name, label, method, where the drift is read); the theory order comes from the
# method registry (cr.method_info).
SERIES = (
    ("gd_one_step", "GD, one step", "gd", "one_step"),
    ("gd_horizon", "GD, fixed horizon T = 1", "gd", "horizon"),
    ("rk4_one_step", "RK4, one step", "rk4", "one_step"),
    ("rk4_horizon", "RK4, fixed horizon T = 1", "rk4", "horizon"),
    (
        "momentum_horizon",
        "momentum β = 0.5, fixed horizon T = 1",
        "momentum",
        "horizon",
    ),
)
PLOTTED = ("gd_one_step", "gd_horizon", "rk4_horizon", "momentum_horizon")
SLOPE_TOLERANCE = 0.15


def distances_to_flow(
    landscape, method: str, params0, lr: float, n_steps: int, beta: float
) -> np.ndarray:
    """‖θ_k − φ(t_k)‖ for k = 0..n, against the closed-form flow."""
    drift = cr.measure_drift(
        landscape.loss,
        params0,
        lr,
        n_steps,
        method=method,
        beta=beta,
        reference=landscape.exact_flow,
        throw=False,
    )
    refuse_failure(drift.result, f"{method} at lr {lr:g} ({n_steps} steps)")
    return np.asarray(drift.distance)


def cone_problem() -> tuple[Cone, jnp.ndarray]:
    center = jnp.array([1.0, -1.0, 2.0])
    cone = Cone(center=center, slope=0.5, offset=1.0)
    return cone, center + jnp.array([6.0, -8.0, 0.0])  # 10 from the apex


def quadratic_problem() -> tuple[Quadratic, jnp.ndarray]:
    return Quadratic(jnp.array([[3.0, 1.0], [1.0, 2.0]])), jnp.array([1.0, 0.5])


def run_cone(stage: Callable[[str], None]) -> dict:
    cone, params0 = cone_problem()
    longest = cr.matched_times("momentum", max(LRS), CONE_STEPS, beta=CONE_BETA)[-1]
    assert longest < float(cone.apex_time(params0)), "the demo cone is too small"
    methods = {}
    for method in METHODS:
        stage(f"cone: {method} on the exact flow")
        runs = [
            distances_to_flow(cone, method, params0, lr, CONE_STEPS, CONE_BETA)
            for lr in LRS
        ]
        methods[method] = {
            "max_drift": [float(d.max()) for d in runs],
            "final_drift": [float(d[-1]) for d in runs],
        }
    return {
        "landscape": "Cone(center=(1, -1, 2), slope=0.5, offset=1)",
        "params0": params0,
        "n_steps": CONE_STEPS,
        "beta": CONE_BETA,
        "lrs": list(LRS),
        "round_off": float(np.finfo(float).eps * jnp.linalg.norm(params0)),
        "methods": methods,
    }


def run_quadratic(stage: Callable[[str], None]) -> dict:
    quadratic, params0 = quadratic_problem()
    n_steps = round(HORIZON / min(LRS))
    runs = {}
    for method in METHODS:
        stage(f"quadratic: {method} drift vs lr")
        runs[method] = [
            distances_to_flow(quadratic, method, params0, lr, n_steps, QUADRATIC_BETA)
            for lr in LRS
        ]
    series = []
    for name, label, method, where in SERIES:
        drift = [
            float(d[1] if where == "one_step" else d[round(HORIZON / lr)])
            for d, lr in zip(runs[method], LRS, strict=True)
        ]
        slope = cr.drift_order(LRS, drift).order
        theory = cr.method_info(method).drift_order(local=where == "one_step")
        series.append(
            {
                "name": name,
                "label": label,
                "method": method,
                "drift": drift,
                "slope": slope,
                "theory": theory,
                "plotted": name in PLOTTED,
                "passed": slope is not None and abs(slope - theory) <= SLOPE_TOLERANCE,
            }
        )
    return {
        "landscape": "Quadratic(A=[[3, 1], [1, 2]])",
        "params0": params0,
        "horizon": HORIZON,
        "beta": QUADRATIC_BETA,
        "lrs": list(LRS),
        "slope_tolerance": SLOPE_TOLERANCE,
        "series": series,
    }


def run(stage: Callable[[str], None]) -> dict:
    """Both landscapes; `stage` reports progress."""
    return {"cone": run_cone(stage), "quadratic": run_quadratic(stage)}


STAGES = 6
"""Calls to `stage` made by `run`."""
