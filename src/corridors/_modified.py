"""Gradient descent's modified flows of orders 1-3 (backward error analysis)."""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    check_increasing,
    check_loss,
    check_lr,
    check_steps,
    checked_params,
    float_dtype,
    resolved_tolerances,
    traced_floats,
)
from ._flows import (
    Flow,
    checked_flow,
    default_solver,
    solve,
    solve_hints,
    solved_flow,
    start_result,
)
from ._geometry import gradient_function
from ._results import check_throw

MODIFIED_ORDERS = (1, 2, 3)


def modified_terms(loss: Callable, args: tuple, params: PyTree, order: int) -> list:
    """The fields f₁, …, f_{order+1} of gradient descent's modified equation at θ.

    θ' = f₁ + h f₂ + h² f₃ + h³ f₄ (Hairer–Lubich–Wanner IX; coefficients derived and
    proved in `proofs/modified_flows.py`), with g = ∇L, H the Hessian:

    - f₁ = −g,  f₂ = −½Hg,
    - f₃ = −⅓H²g − (1/12)D³L[g, g],
    - f₄ = −¼H³g − (1/12)D³L[g, Hg] − (1/12)H·D³L[g, g].

    Every term is a chain of Jacobian-vector products of the gradient: no tensor is
    formed. D³L[u, v] is the derivative, in direction u, of θ ↦ H(θ)v with v frozen.
    """
    grad_fn = gradient_function(loss, args)
    grad, hvp = jax.linearize(grad_fn, params)
    hg = hvp(grad)
    scale = optax.tree.scale
    terms = [scale(-1.0, grad), scale(-0.5, hg)]
    if order == 1:
        return terms

    def third(u, v):
        """D³L[u, v] at params (u, v held fixed)."""
        along = lambda p: jax.jvp(grad_fn, (p,), (v,))[1]  # noqa: E731
        return jax.jvp(along, (params,), (u,))[1]

    h2g = hvp(hg)
    d3gg = third(grad, grad)
    terms.append(optax.tree.add_scale(scale(-1 / 3, h2g), -1 / 12, d3gg))
    if order == 2:
        return terms
    h3g = hvp(h2g)
    d3_g_hg = third(hg, grad)
    h_d3gg = hvp(d3gg)
    f4 = optax.tree.add_scale(scale(-1 / 4, h3g), -1 / 12, d3_g_hg)
    terms.append(optax.tree.add_scale(f4, -1 / 12, h_d3gg))
    return terms


def modified_field_of_order(loss: Callable, args: tuple, order: int) -> Callable:
    """The vector field (t, θ, lr) ↦ Σ_{j=0..order} lr^j f_{j+1}(θ)."""

    def field(t, params, lr):
        terms = modified_terms(loss, args, params, order)
        total = terms[-1]
        for term in reversed(terms[:-1]):  # Horner in lr
            total = optax.tree.add_scale(term, lr, total)
        return total

    return field


def _check_order(where: str, order: Any) -> int:
    if isinstance(order, bool) or order not in MODIFIED_ORDERS:
        raise InvalidInputError(f"{where}: `order` must be 1, 2 or 3, got {order!r}.")
    return int(order)


def flow_inputs(
    where, loss, params0, ts, lr, args, rtol, atol, max_steps, solver, throw
):
    params0 = checked_params(where, loss, params0, args)
    args = traced_floats(args)
    ts = check_increasing(where, "ts", ts, float_dtype(params0))
    lr = jnp.asarray(check_lr(where, lr), ts.dtype)
    rtol, atol = resolved_tolerances(where, ts.dtype, rtol, atol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    solver = default_solver(solver)
    check_throw(where, throw)
    return params0, ts, lr, args, rtol, atol, max_steps, solver


def modified_flow(
    loss: Callable,
    params0: PyTree,
    ts: Float[Array, " times"],
    lr: float | Array,
    args: tuple = (),
    *,
    order: int = 1,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 100_000,
    solver: diffrax.AbstractSolver | str | None = None,
    dense: bool = False,
    throw: bool = True,
) -> Flow:
    """Solve gradient descent's modified flow of order 1, 2 or 3 (backward error analysis).

    GD with step h follows θ' = f₁ + h f₂ + h² f₃ + h³ f₄ + …; truncated after h^order,
    one GD step matches the flow over time h to O(h^(order+2)), and n = T/h steps
    match it at time T to O(h^(order+1)):

    - order 1: θ' = −∇L − (h/2)H∇L (= `gradient_flow(..., modified=h)`);
    - order 2: adds h²f₃ = −h²[⅓H²∇L + (1/12)D³L[∇L, ∇L]];
    - order 3: adds h³f₄ = −h³[¼H³∇L + (1/12)D³L[∇L, H∇L] + (1/12)H·D³L[∇L, ∇L]].

    The coefficients are derived and proved in `proofs/modified_flows.py`. The terms are
    nested Jacobian-vector products of the gradient (no Hessian or third-derivative
    tensor): one field evaluation costs about 2, 4 and 8 gradients for orders 1, 2, 3.
    The series is asymptotic: it describes GD only while h·λ_max ≪ 1 (past the edge of
    stability use [`corridors.central_flow`][]).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree of floating arrays.
    - `ts`: strictly increasing flow times (GD step k sits at t = k·lr).
    - `lr`: the learning rate h > 0 of the gradient descent being modelled.
    - `args`: extra arguments passed to `loss`.
    - `order`: 1, 2 or 3.
    - `rtol`, `atol`, `max_steps`, `solver`, `dense`, `throw`: as in
      [`corridors.gradient_flow`][].

    **Returns:**

    A [`corridors.Flow`][] with `.ts`, `.params` (leading axis `len(ts)`), `.stats`,
    `.result`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda x: jnp.sum(jnp.cosh(x))
    x0, h = jnp.array([0.5, -0.3]), 0.05
    step = cr.gd(loss, x0, h, 1)[1]
    flow = cr.modified_flow(loss, x0, jnp.array([0.0, h]), h, order=3).params[1]
    # one GD step matches the order-3 modified flow to O(h⁵) (float32 round-off here)
    print(float(jnp.linalg.norm(step - flow)) < 1e-6)  # True
    ```
    """
    where = "modified_flow"
    order = _check_order(where, order)
    params0, ts, lr, args, rtol, atol, max_steps, solver = flow_inputs(
        where, loss, params0, ts, lr, args, rtol, atol, max_steps, solver, throw
    )
    flow = _modified_flow(
        loss, params0, ts, lr, args,
        order=order, rtol=rtol, atol=atol, max_steps=max_steps, solver=solver,
        dense=dense,
    )  # fmt: skip
    return checked_flow(where, flow, throw, solve_hints(max_steps))


@eqx.filter_jit
def _modified_flow(
    loss, params0, ts, lr, args, *, order, rtol, atol, max_steps, solver, dense
):
    where = "modified_flow"
    check_loss(where, loss, params0, args)
    start = start_result(loss, params0, args)
    solved = solve(
        modified_field_of_order(loss, args, order), params0, ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=dense,
    )  # fmt: skip
    return solved_flow(ts, solved, start, dense=dense)
