"""One optimizer step against the gradient flow: `corridors.step_drift`.

The flow φ of L from θ is solved in rescaled coordinates u = (φ − θ)/c, τ = t/T, with
c the step's displacement (or the flow's, T‖∇L‖, if larger) and T the flow time:
u' = −(T/c)∇L(θ + c·u) over τ ∈ [0, 1]. The state then has norm ≈ 1 whatever the size
of the step, so a tolerance on u is relative to the displacement and float32 keeps its
seven digits of the drift instead of spending them on θ.

The default integrator is bounded: two fixed Dopri8 steps (27 gradients) unrolled, with
diffrax's embedded error estimate. Only if that estimate exceeds the tolerance does an
adaptive Dopri8 solve take over (a `lax.cond`, so its `while` loop runs only then):
the cost no longer depends on how a backend compiles convolutions inside loops.
"""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

from ._checks import (
    InvalidInputError,
    as_float_params,
    check_finite,
    check_loss,
    check_nonnegative,
    check_real,
    check_same_structure,
    check_steps,
    checked_params,
    float_dtype,
    resolved_tolerances,
    traced_floats,
)
from ._results import RESULTS, as_result, finish, first_failure

FIXED_STEPS = 2  # Dopri8 steps over τ ∈ [0, 1]: error ~1e-9·(hλ)⁹ relative
# time="nearest": Newton on a Taylor model from θ, then corrections on the solved flow.
MODEL_ITERATIONS = 6
REFINEMENTS = 3
MAX_TAU = (
    4.0  # the nearest point lies within 2‖update‖ of θ; the flow starts at speed 1
)


class StepDrift(eqx.Module):
    """How far one step lands from the gradient flow.

    **Fields:**

    - `drift`: ‖(θ + update) − φ(time)‖₂ over all leaves.
    - `relative`: `drift` / ‖update‖ (0 for a zero update).
    - `time`: the flow time compared with.
    - `stats`: `num_steps` (integrator steps) and `num_evaluations` (gradients of the
      loss, the first one at θ included).
    - `result`: a [`corridors.RESULTS`][] item.
    """

    drift: Array
    relative: Array
    time: Array
    stats: dict
    result: RESULTS


def step_drift(
    loss: Callable,
    params: PyTree,
    update: PyTree,
    time: Any = None,
    args: tuple = (),
    *,
    rtol: float | None = None,
    atol: float | None = None,
    solver: diffrax.AbstractAdaptiveSolver | None = None,
    max_steps: int = 256,
    throw: bool = True,
) -> StepDrift:
    """Distance between the point a step reached, `params + update`, and the gradient
    flow φ of `loss` from `params`.

    Works for any optimizer: pass the update it applied (`optax.apply_updates(params,
    update)` is the new point). Jit-compatible.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ the step started from, any pytree.
    - `update`: the step, a pytree like `params`.
    - `time`: the flow time t to compare with:
        - `None` (default): the step's own size, t = ⟨update, −∇L⟩/‖∇L‖² (clipped at
          0): exactly h for a GD step −h∇L and for any step whose component along ∇L
          is −h∇L. It is the flow time nearest to the step along the flow's tangent
          line, so a component orthogonal to ∇L counts as drift instead of stretching
          the clock (as ‖update‖/‖∇L‖ would);
        - `"nearest"`: the time t ≥ 0 whose flow point is closest to the new point,
          by Newton on t from the tangent-line time above (two corrections, one
          Hessian-vector product and one short solve each); compares a momentum or
          Adam step with the flow *path*, not a clock;
        - a number t ≥ 0.
    - `args`: extra arguments passed to `loss`.
    - `rtol`: accuracy relative to the displacement max(‖update‖, t‖∇L‖): the drift is
      correct to about `rtol` times it. Default by the dtype of `params`: 1e-10 in
      float64, 1e-6 in float32.
    - `atol`: absolute accuracy of the drift (default 1e-12 in float64, 1e-8 in float32).
    - `solver`: `None` (default): two fixed Dopri8 steps with diffrax's embedded error
      estimate, falling back to adaptive Dopri8 only where the estimate misses the
      tolerance; or an adaptive diffrax solver to solve adaptively throughout.
    - `max_steps`: cap on the steps of an adaptive solve.
    - `throw`: raise on failure (default); with `False` the failure is `.result`.

    **Returns:**

    A [`corridors.StepDrift`][] with `.drift`, `.relative`, `.time`, `.stats`,
    `.result`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda w: 0.5 * jnp.sum(w**2)  # φ(t) = w·e^{-t}
    w = jnp.array([1.0, 2.0])
    out = cr.step_drift(loss, w, -0.1 * w)  # a GD step of size 0.1
    print(round(float(out.time), 6), round(float(out.relative), 6))  # 0.1 0.048374
    ```
    """
    where = "step_drift"
    params = checked_params(where, loss, params, args, "params")
    update = as_float_params(where, update, "update")
    check_same_structure(where, "params", params, "update", update)
    update = check_finite(where, "update", update)
    args = traced_floats(args)
    dtype = float_dtype(params)
    rtol, atol = resolved_tolerances(where, dtype, rtol, atol)
    mode, time = _time_mode(where, time, dtype)
    if solver is not None and not isinstance(solver, diffrax.AbstractAdaptiveSolver):
        raise InvalidInputError(
            f"{where}: `solver` must be None or an adaptive diffrax solver (e.g. "
            f"diffrax.Dopri8()), got {type(solver).__name__}."
        )
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    out = step_drift_kernel(
        loss,
        params,
        update,
        time,
        args,
        jnp.asarray(rtol, dtype),  # traced: new tolerances do not recompile
        jnp.asarray(atol, dtype),
        mode=mode,
        solver=solver,
        max_steps=max_steps,
    )
    return finish(where, out, out.result, throw)


def _time_mode(where: str, time: Any, dtype: Any) -> tuple[str, Array | None]:
    """("step" | "nearest" | "given", the time as an array or None)."""
    if time is None:
        return "step", None
    if isinstance(time, str):
        if time != "nearest":
            raise InvalidInputError(
                f"{where}: `time` must be None, 'nearest' or a number ≥ 0, got {time!r}."
            )
        return "nearest", None
    time = jnp.asarray(check_real(where, "time", time, scalar=True), dtype)
    return "given", check_nonnegative(where, "time", time)


def _evaluations_per_step(solver: diffrax.AbstractSolver) -> int:
    tableau = solver.tableau
    return tableau.num_stages - int(tableau.fsal)


@eqx.filter_jit
def step_drift_kernel(
    loss, params, update, time, args, rtol, atol, *, mode, solver, max_steps
) -> StepDrift:
    """`step_drift` on checked inputs, never raising: failures are `.result`."""
    check_loss("step_drift", loss, params, args)
    return solve_step(
        loss, params, update, time, args, rtol, atol,
        mode=mode, solver=solver, max_steps=max_steps,
    )[0]  # fmt: skip


def solve_step(
    loss, params, update, time, args, rtol, atol, *, mode, solver, max_steps
) -> tuple[StepDrift, PyTree]:
    """The `StepDrift` and the flow point φ(time) it compared with (traceable)."""
    theta, unravel = ravel_pytree(params)
    step = ravel_pytree(update)[0].astype(theta.dtype)
    flat_loss = lambda flat: loss(unravel(flat), *args)  # noqa: E731
    value, grad = jax.value_and_grad(flat_loss)(theta)
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
    grad = jnp.where(finite, grad, 0.0)
    grad_norm = jnp.linalg.norm(grad)
    step_norm = jnp.linalg.norm(step)
    descending = grad_norm > 0
    safe_grad_norm = jnp.where(descending, grad_norm, 1.0)
    own_time = jnp.maximum(-(step @ grad) / safe_grad_norm**2, 0.0)
    own_time = jnp.where(descending, own_time, 0.0)
    # `unit`: the flow time that τ = 1 stands for; `tau1`: where the first solve ends.
    if mode == "nearest":
        unit = step_norm / safe_grad_norm
        tau1 = own_time / jnp.where(unit > 0, unit, 1.0)
    else:
        unit = own_time if mode == "step" else time
        tau1 = jnp.ones((), theta.dtype)
    scale = jnp.maximum(step_norm, unit * grad_norm)
    moving = finite & descending & (unit > 0) & (scale > 0)
    scale = jnp.where(moving, scale, 1.0)
    speed = jnp.where(moving, unit, 0.0) / scale
    tau1 = jnp.where(moving, tau1, 0.0)
    flat_grad = jax.grad(flat_loss)
    term = diffrax.ODETerm(lambda tau, u, _: -speed * flat_grad(theta + scale * u))
    segment = _segment(
        term, solver, tol=rtol + atol / scale, rtol=rtol, atol=atol / scale,
        max_steps=max_steps,
    )  # fmt: skip
    target = step / scale
    zero = jnp.zeros((), theta.dtype)
    u0 = jnp.zeros_like(theta)
    evaluations = 0
    if mode == "nearest":
        # A second-order start, free of solves: near θ, u(τ) ≈ τv + τ²a/2; Newton on
        # that model from the tangent-line time.
        velocity, acceleration = _velocity_and_acceleration(term, zero, u0)
        evaluations += 3
        for _ in range(MODEL_ITERATIONS):
            model = tau1 * velocity + 0.5 * tau1**2 * acceleration
            tau1 = _newton(
                tau1, velocity + tau1 * acceleration, acceleration, model - target
            )
    u, result, steps, more = segment(u0, zero, tau1, FIXED_STEPS)
    evaluations, tau = evaluations + more, tau1
    if mode == "nearest":
        # A scan, not a Python loop: the correction (and its fallback solve) is
        # compiled once, whatever REFINEMENTS is.
        def correct(carry, _):
            u, tau, result, steps, evaluations = carry
            velocity, acceleration = _velocity_and_acceleration(term, tau, u)
            new_tau = _newton(tau, velocity, acceleration, u - target)
            # The corrections are short: one fixed step each (the fallback guards it).
            u, more_result, more_steps, more = segment(u, tau, new_tau, 1)
            result = first_failure(result, more_result)
            carry = (u, new_tau, result, steps + more_steps, evaluations + 3 + more)
            return carry, None

        carry = (u, tau, result, jnp.asarray(steps), jnp.asarray(evaluations))
        (u, tau, result, steps, evaluations), _ = jax.lax.scan(
            correct, carry, None, length=REFINEMENTS
        )
    distance = jnp.linalg.norm(target - u)
    # A stationary flow (∇L = 0) or t = 0: φ(t) = θ, so the drift is the whole step.
    drift = jnp.where(moving, scale * distance, step_norm)
    result = RESULTS.where(
        jnp.all(jnp.isfinite(u)), result, as_result(diffrax.RESULTS.nonfinite)
    )
    result = RESULTS.where(finite, result, RESULTS.nonfinite_loss)
    drift = jnp.where(finite, drift, jnp.nan)
    reached = unravel(jnp.where(moving, theta + scale * u, theta))
    return StepDrift(
        drift=drift,
        relative=jnp.where(
            step_norm > 0, drift / jnp.where(step_norm > 0, step_norm, 1.0), 0.0
        ),
        time=jnp.where(moving, unit * tau, jnp.where(mode == "nearest", 0.0, unit)),
        stats={"num_steps": steps, "num_evaluations": 1 + evaluations},
        result=result,
    ), reached


def _velocity_and_acceleration(term, tau, u):
    """u' and u'' = J·u' at (τ, u): one gradient and one Hessian-vector product
    (≈ 3 gradients)."""
    field = lambda state: term.vf(tau, state, None)  # noqa: E731
    return jax.jvp(field, (u,), (field(u),))


def _newton(tau, velocity, acceleration, residual):
    """One Newton step on f(τ) = ½‖u(τ) − target‖² (f' = ⟨u', r⟩, f'' = ‖u'‖² +
    ⟨u'', r⟩ with r = u − target), Gauss–Newton where f'' ≤ 0; kept in
    [0, MAX_TAU]."""
    speed = velocity @ velocity
    curvature = speed + acceleration @ residual
    curvature = jnp.where(curvature > 0, curvature, speed)
    safe = jnp.where(curvature > 0, curvature, 1.0)
    delta = jnp.where(curvature > 0, -(velocity @ residual) / safe, 0.0)
    return jnp.clip(tau + delta, 0.0, MAX_TAU)


def _segment(term, solver, *, tol, rtol, atol, max_steps):
    """u(τ0) ↦ u(τ1): (u1, result, steps, gradient evaluations)."""

    def adaptive(chosen, u0, tau0, tau1):
        solution = diffrax.diffeqsolve(
            term,
            chosen,
            tau0,
            tau1,
            dt0=None,
            y0=u0,
            saveat=diffrax.SaveAt(t1=True),
            # RMS error per entry of a unit-norm state: tolerances over √n.
            stepsize_controller=diffrax.PIDController(
                rtol=rtol,
                atol=(rtol + atol) / jnp.sqrt(u0.size),
                pcoeff=0.4,
                icoeff=1.0,
            ),
            max_steps=max_steps,
            throw=False,
        )
        steps = solution.stats["num_steps"]
        evaluations = _evaluations_per_step(chosen) * steps + 1
        return solution.ys[-1], as_result(solution.result), steps, evaluations

    def run(u0, tau0, tau1, n_steps):
        if solver is not None:
            return adaptive(solver, u0, tau0, tau1)
        dopri8 = diffrax.Dopri8()
        u1, error = _fixed_steps(term, dopri8, u0, tau0, tau1, n_steps)
        fixed_evaluations = _evaluations_per_step(dopri8) * n_steps + 1
        accepted = (error <= tol) & jnp.all(jnp.isfinite(u1))

        def fallback(_):
            u, result, steps, evaluations = adaptive(dopri8, u0, tau0, tau1)
            return u, result, n_steps + steps, fixed_evaluations + evaluations

        def keep(_):
            return u1, RESULTS.successful, n_steps, fixed_evaluations

        return jax.lax.cond(accepted, keep, fallback, None)

    return run


def _fixed_steps(term, solver, u0, tau0, tau1, n_steps):
    """`n_steps` equal solver steps, unrolled; (u1, Σ‖embedded error estimate‖)."""
    dt = (tau1 - tau0) / n_steps
    state = solver.init(term, tau0, tau0 + dt, u0, None)
    u, error = u0, jnp.zeros((), u0.dtype)
    for k in range(n_steps):
        start = tau0 + k * dt
        u, u_error, _, state, _ = solver.step(
            term, start, start + dt, u, None, state, made_jump=False
        )
        error = error + jnp.linalg.norm(u_error)
    return u, error
