"""The gradient flow θ' = −∇L(θ) and its first-order modified flow, solved with diffrax."""

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    any_nonfinite,
    check_args,
    check_finite,
    check_increasing,
    check_loss,
    check_positive,
    check_real,
    check_steps,
    check_storage,
    checked_params,
    float_dtype,
    resolved_tolerances,
    traced_floats,
)
from ._geometry import gradient_and_hvp, gradient_function
from ._results import (
    RESULTS,
    as_result,
    check_throw,
    checked,
    failed_if,
    first_failure,
)


def gradient_field(loss: Callable, args: tuple) -> Callable:
    """Vector field of the gradient flow, (t, θ, _) ↦ −∇L(θ)."""
    grad = gradient_function(loss, args)
    return lambda t, params, _: optax.tree.scale(-1.0, grad(params))


def modified_field(loss: Callable, args: tuple) -> Callable:
    """Vector field of the first-order modified flow, (t, θ, lr) ↦ −∇L − (lr/2)H∇L.

    This is −∇(L + (lr/4)‖∇L‖²): gradient descent with step lr matches its flow to
    O(lr³) per step (implicit gradient regularization).
    """

    def field(t, params, lr):
        grad, hessian_grad = gradient_and_hvp(loss, params, args)
        return optax.tree.scale(
            -1.0, optax.tree.add_scale(grad, 0.5 * lr, hessian_grad)
        )

    return field


class Flow(eqx.Module):
    """A solved gradient flow.

    **Fields:**

    - `ts`: the requested times, shape `(len(ts),)`.
    - `params`: the flow at `ts`, a pytree like `params0` with a leading axis `len(ts)`.
    - `stats`: solver statistics, a dict with `num_steps`, `num_accepted_steps`,
      `num_rejected_steps` and, for explicit Runge–Kutta solvers,
      `num_evaluations` (vector-field evaluations: each is one gradient, or one
      gradient and one Hessian-vector product for the modified flow).
    - `solution`: the `diffrax.Solution` of the solve over the flattened parameters
      (`jax.flatten_util.ravel_pytree` order), holding the dense interpolant when the
      flow was solved with `dense=True` (else `None`).
    - `unravel`: maps a flat parameter vector back to the pytree of `params0`.
    - `result`: a [`corridors.RESULTS`][] item, `RESULTS.successful` unless the solve
      failed (only seen with `throw=False`; the `params` past a failure are Inf).
    """

    ts: Float[Array, " times"]
    params: PyTree
    stats: dict
    solution: diffrax.Solution | None
    unravel: Callable[[Array], PyTree] = eqx.field(static=True)
    result: RESULTS = eqx.field(default_factory=lambda: RESULTS.successful)

    def evaluate(self, t: float | Array) -> PyTree:
        """The flow at time(s) `t` in [ts[0], ts[-1]], from the dense interpolant.

        **Arguments:**

        - `t`: a scalar time, or an array of times (the result then has a leading axis).

        **Returns:**

        The params at `t`, accurate to the solve's tolerance (the interpolant has the
        solver's order).
        """
        if self.solution is None:
            raise InvalidInputError(
                "Flow.evaluate: this flow has no dense interpolant; solve it with "
                "`gradient_flow(..., dense=True)`."
            )
        check_real("Flow.evaluate", "t", t)
        t = jnp.asarray(t, self.ts.dtype)
        t = check_finite("Flow.evaluate", "t", t)
        outside = jnp.any((t < self.ts[0]) | (t > self.ts[-1]))
        t = eqx.error_if(
            t,
            outside,
            "Flow.evaluate: `t` lies outside the solved interval [ts[0], ts[-1]].",
        )
        evaluate = lambda time: self.unravel(self.solution.evaluate(time))  # noqa: E731
        return evaluate(t) if t.ndim == 0 else jax.vmap(evaluate)(t.reshape(-1))


def default_solver(solver: Any) -> diffrax.AbstractSolver:
    """`None` → Dopri8 (8th order, adaptive); `"stiff"` → Kvaerno5 (implicit, L-stable)."""
    if solver is None:
        return diffrax.Dopri8()
    if isinstance(solver, str):
        if solver == "stiff":
            return diffrax.Kvaerno5()
        raise InvalidInputError(
            f"gradient_flow: `solver` must be None, 'stiff' or a diffrax solver, got {solver!r}."
        )
    if not isinstance(solver, diffrax.AbstractSolver):
        raise InvalidInputError(
            "gradient_flow: `solver` must be None, 'stiff' or a diffrax.AbstractSolver, "
            f"got {type(solver).__name__}."
        )
    tableau = getattr(solver, "tableau", None)
    no_estimate = isinstance(tableau, diffrax.ButcherTableau) and not np.any(
        tableau.b_error
    )
    if not isinstance(solver, diffrax.AbstractAdaptiveSolver) or no_estimate:
        raise InvalidInputError(
            f"gradient_flow: `solver` must be an adaptive diffrax solver (with an error "
            f"estimate, e.g. diffrax.Dopri5() or diffrax.Kvaerno5()); "
            f"{type(solver).__name__} takes fixed steps: use corridors.runge_kutta for "
            "those."
        )
    return solver


def _controller(solver: diffrax.AbstractSolver, rtol: float, atol: float, ts: Array):
    # A PI controller with icoeff=1 suits the smooth, non-stiff flows of most losses;
    # implicit solvers get the softer coefficients diffrax recommends for stiff problems.
    if isinstance(solver, diffrax.AbstractImplicitSolver):
        pid = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.3, icoeff=0.4)
    else:
        pid = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.4, icoeff=1.0)
    # Step exactly to every requested time: values there are then step endpoints,
    # accurate to the tolerance. Interpolating between long steps instead can be
    # 1e4 times less accurate (Dopri8's interpolant is of lower order than its steps).
    return _StopWhereNonfinite(pid, step_ts=ts)


class _StopWhereNonfinite(diffrax.ClipStepSizeController):
    """Ends the solve with `RESULTS.nonfinite` where the field is NaN/Inf for every step.

    A trial step into a region where the loss is undefined is rejected and retried
    shorter, as it should be. But where the flow itself reaches such a region, the
    retries shrink the step to nothing and the solve would spin to `max_steps`, to be
    reported as a budget problem; a non-finite trial over a step already below the
    resolution of t is that case.
    """

    def adapt_step_size(self, t0, t1, y0, y1_candidate, *args, **kwargs):
        *decision, result = super().adapt_step_size(
            t0, t1, y0, y1_candidate, *args, **kwargs
        )
        resolution = 64 * jnp.finfo(jnp.result_type(t0)).eps
        negligible = jnp.abs(t1 - t0) <= resolution * jnp.maximum(jnp.abs(t0), 1.0)
        stuck = negligible & ~jnp.all(jnp.isfinite(y1_candidate))
        result = diffrax.RESULTS.where(stuck, diffrax.RESULTS.nonfinite, result)
        return (*decision, result)


class Solved(NamedTuple):
    """What `solve` returns: the states at `ts`, statistics, the flat solution, and
    the solve's status."""

    ys: PyTree  # like y0, with a leading axis len(ts); Inf past a failure
    stats: dict
    solution: diffrax.Solution  # over the flattened state
    unravel: Callable[[Array], PyTree]  # flat state -> pytree like y0
    result: RESULTS


def solve(
    field: Callable,
    y0: PyTree,
    ts: Array,
    field_args: Any,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
    solver: diffrax.AbstractSolver,
    dense: bool,
) -> Solved:
    """Solve y' = field(t, y, field_args) from ts[0], saving at `ts`.

    Never raises on what it meets: the caller ties `Solved.result` to its output with
    `finish(where, ..., hints=solve_hints(max_steps))`. The state is flattened into one
    vector for the solve: diffrax's per-step overhead grows with the number of leaves,
    and the error norm (RMS over all entries) is the same. Shared by `gradient_flow`,
    `measure_drift` and `sweep_drift`.
    """
    flat0, unravel = ravel_pytree(y0)

    def flat_field(t, y, field_args):
        return ravel_pytree(field(t, unravel(y), field_args))[0]

    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(flat_field),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=flat0,
        args=field_args,
        saveat=diffrax.SaveAt(ts=ts, dense=dense),
        stepsize_controller=_controller(solver, rtol, atol, ts),
        max_steps=max_steps,
        throw=False,
    )
    return Solved(
        jax.vmap(unravel)(solution.ys),
        _stats(solver, solution),
        solution,
        unravel,
        as_result(solution.result),
    )


def start_result(loss: Callable, params0: PyTree, args: tuple) -> RESULTS:
    """`nonfinite_loss` if the loss or its gradient is NaN/Inf at `params0`."""
    value, grad = jax.value_and_grad(loss)(params0, *args)
    return failed_if(any_nonfinite((value, grad)), RESULTS.nonfinite_loss)


def solve_hints(max_steps: int) -> tuple:
    """What to try when a flow solve fails, appended to the `RESULTS` messages."""
    return (
        (
            RESULTS.max_steps_reached,
            f"The flow solve hit max_steps={max_steps} before the last time: raise "
            "`max_steps`, loosen `rtol`/`atol`, or pass `solver='stiff'` for a sharp "
            "loss.",
        ),
        (
            RESULTS.nonfinite,
            "The loss or its gradient is NaN or Inf along the flow itself (the solver's "
            "steps shrank to nothing there): is the loss defined along the whole flow?",
        ),
    )


def _stats(solver: diffrax.AbstractSolver, solution: diffrax.Solution) -> dict:
    stats = {
        name: solution.stats[name]
        for name in ("num_steps", "num_accepted_steps", "num_rejected_steps")
    }
    tableau = getattr(solver, "tableau", None)
    if isinstance(tableau, diffrax.ButcherTableau) and not tableau.implicit:
        # A first-same-as-last tableau reuses its last stage as the next step's first.
        per_step = tableau.num_stages - int(tableau.fsal)
        stats["num_evaluations"] = per_step * stats["num_steps"] + int(tableau.fsal)
    return stats


def gradient_flow(
    loss: Callable,
    params0: PyTree,
    ts: Float[Array, " times"],
    args: tuple = (),
    *,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 100_000,
    solver: diffrax.AbstractSolver | str | None = None,
    modified: float | Array | None = None,
    dense: bool = False,
    throw: bool = True,
) -> Flow:
    """Solve the gradient flow θ'(t) = −∇L(θ(t)), θ(ts[0]) = params0.

    Adaptive diffrax solve (Dopri8 with PI step-size control by default). The solver
    steps exactly to every time in `ts`, so the saved values are step endpoints,
    accurate to the tolerance; a dense flow's `evaluate(t)` between them interpolates
    and is less accurate (put the times you need into `ts`).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree of floating arrays.
    - `ts`: strictly increasing times; the flow starts at `ts[0]`.
    - `args`: extra arguments passed to `loss`.
    - `rtol`, `atol`: tolerances of the PID step-size controller; default by the
      dtype of `params0`: 1e-10 / 1e-12 in float64, 1e-6 / 1e-8 in float32.
    - `max_steps`: cap on solver steps; reaching it raises an error.
    - `solver`: `None` (Dopri8), `"stiff"` (Kvaerno5, implicit: for sharp losses whose
      Hessian has a large spread; each Newton solve forms the dense Hessian) or any
      `diffrax.AbstractSolver`.
    - `modified`: a learning rate h > 0 to solve the first-order modified flow
      θ' = −∇L − (h/2)H∇L instead, which gradient descent with step h follows to O(h³)
      per step.
    - `dense`: also keep a dense interpolant, so `Flow.evaluate(t)` works anywhere in
      [ts[0], ts[-1]].
    - `throw`: raise on a failure met while solving (a non-finite loss, `max_steps`
      reached). With `throw=False` nothing raises: the failure is `Flow.result`.

    **Returns:**

    A [`corridors.Flow`][] with `.ts`, `.params` (leading axis `len(ts)`), `.stats`,
    `.result`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)  # the flow is θ(t) = e^{−t}·θ_0
    flow = cr.gradient_flow(loss, jnp.array([1.0, 2.0]), jnp.array([0.0, 0.5, 1.0]))
    print(flow.params[:, 0])  # ≈ [1.      0.60653 0.36788]: e^{−t}
    print(flow.result == cr.RESULTS.successful)  # True
    ```
    """
    where = "gradient_flow"
    params0 = checked_params(where, loss, params0, args)
    args = traced_floats(args)
    ts = check_increasing(where, "ts", ts, float_dtype(params0))
    rtol, atol = resolved_tolerances(where, ts.dtype, rtol, atol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    if ts.shape[0] - 1 > max_steps:
        raise InvalidInputError(
            f"{where}: `ts` has {ts.shape[0]:,} times and the solver steps to each of "
            f"them, so it needs at least {ts.shape[0] - 1:,} steps, more than "
            f"max_steps = {max_steps:,}; pass fewer times or raise `max_steps`."
        )
    check_storage(where, f"len(ts) = {ts.shape[0]:,}", ts.shape[0], params0)
    solver = default_solver(solver)
    throw = check_throw(where, throw)
    if modified is not None:
        modified = check_real(where, "modified", modified, scalar=True)
        modified = jnp.asarray(check_positive(where, "modified", modified), ts.dtype)
    flow = _gradient_flow(
        loss,
        params0,
        ts,
        args,
        modified,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        solver=solver,
        dense=dense,
    )
    return checked_flow(where, flow, throw, solve_hints(max_steps))


def checked_flow(where: str, flow: Any, throw: bool, hints: tuple = ()) -> Any:
    """`flow` (a solved flow with `.ts`, `.params` and `.result`) or, when `throw`,
    the error of its failure naming `where` and the flow time the solve reached.

    Under an outer `jit` the error is tied to the flow's arrays (`equinox.error_if`:
    it fires when the compiled code runs, and cannot print a traced time).
    """
    if not throw:
        return flow

    def detail():
        # The saved states past a failure are Inf: the last finite one is as far as
        # the solve got.
        finite = jax.vmap(lambda x: ~any_nonfinite(x))(flow.params)
        reached = int(np.flatnonzero(np.asarray(finite))[-1]) if finite.any() else 0
        ts = np.asarray(flow.ts)
        if reached + 1 < ts.shape[0]:
            return (
                f"The solve reached flow time t = {ts[reached]:.6g} and failed before "
                f"t = {ts[reached + 1]:.6g}."
            )
        return f"It failed at flow time t = {ts[reached]:.6g}."

    return checked(where, flow, flow.result, detail, hints)


@eqx.filter_jit
def _gradient_flow(
    loss, params0, ts, args, modified, *, rtol, atol, max_steps, solver, dense
):
    where = "gradient_flow"
    check_loss(where, loss, params0, args)
    params0 = check_args(where, args, params0)
    start = start_result(loss, params0, args)
    field = (
        gradient_field(loss, args) if modified is None else modified_field(loss, args)
    )
    solved = solve(
        field,
        params0,
        ts,
        modified,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        solver=solver,
        dense=dense,
    )
    return solved_flow(ts, solved, start, dense=dense)


def solved_flow(ts, solved, start, *, dense) -> "Flow":
    """The `Flow` of a finished `solve` from a start whose status is `start`: the
    first failure of the two is its `.result` (raised by `checked_flow`)."""
    result = first_failure(start, solved.result)
    return Flow(
        ts=ts,
        params=solved.ys,
        stats=solved.stats,
        solution=solved.solution if dense else None,
        unravel=solved.unravel,
        result=result,
    )
