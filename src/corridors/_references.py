"""Reference flows for large learning rates: higher-order modified flows (backward error
analysis) and the principal flow (Rosca et al., 2023), with the reference dispatch shared
by `measure_drift`, `sweep_drift` and the testing kit.

The central flow (Cohen et al., 2025) lives in `_central.py`.
"""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.experimental.sparse.linalg import lobpcg_standard
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    check_increasing,
    check_loss,
    check_positive,
    check_steps,
    checked_params,
    float_dtype,
    traced_floats,
)
from ._flows import (
    Flow,
    default_solver,
    gradient_field,
    solve,
    solve_hints,
    start_result,
)
from ._geometry import gradient_function, tree_norm
from ._results import RESULTS, check_throw, finish, first_failure

MODIFIED_ORDERS = (1, 2, 3)
REFERENCES = ("flow", "modified", "modified2", "modified3", "principal", "central")


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


def _common(where, loss, params0, ts, lr, args, rtol, atol, max_steps, solver, throw):
    params0 = checked_params(where, loss, params0, args)
    args = traced_floats(args)
    ts = check_increasing(where, "ts", jnp.asarray(ts, float_dtype(params0)))
    lr = jnp.asarray(check_positive(where, "lr", lr), ts.dtype)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        check_positive(where, name, tol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    solver = default_solver(solver)
    check_throw(where, throw)
    return params0, ts, lr, args, max_steps, solver


def modified_flow(
    loss: Callable,
    params0: PyTree,
    ts: Float[Array, " times"],
    lr: float | Array,
    args: tuple = (),
    *,
    order: int = 1,
    rtol: float = 1e-10,
    atol: float = 1e-12,
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
    print(float(jnp.linalg.norm(step - flow)) < 1e-8)  # True
    ```
    """
    where = "modified_flow"
    order = _check_order(where, order)
    params0, ts, lr, args, max_steps, solver = _common(
        where, loss, params0, ts, lr, args, rtol, atol, max_steps, solver, throw
    )
    return _modified_flow(
        loss, params0, ts, lr, args,
        order=order, rtol=rtol, atol=atol, max_steps=max_steps, solver=solver,
        dense=dense, throw=throw,
    )  # fmt: skip


@eqx.filter_jit
def _modified_flow(
    loss, params0, ts, lr, args, *, order, rtol, atol, max_steps, solver, dense, throw
):
    where = "modified_flow"
    check_loss(where, loss, params0, args)
    start = start_result(loss, params0, args)
    if throw:  # fail before the solve, which would spin to max_steps on a NaN
        params0 = finish(where, params0, start, throw)
    solved = solve(
        modified_field_of_order(loss, args, order), params0, ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=dense,
    )  # fmt: skip
    result = first_failure(start, solved.result)
    return Flow(
        ts=ts,
        params=finish(where, solved.ys, result, throw, solve_hints(max_steps)),
        stats=solved.stats,
        solution=solved.solution if dense else None,
        unravel=solved.unravel,
        result=result,
    )


# ---------------------------------------------------------------------------------
# The principal flow


def principal_coefficients(z: Array) -> tuple[Array, Array]:
    """Real and imaginary parts of log(1 − z)/z (principal branch), z = hλ.

    It is −1 − z/2 − z²/3 − … near 0; for z > 1, log(1 − z) = log(z − 1) + iπ.
    """
    safe = jnp.where(z == 0, 1.0, z)
    log_abs = jnp.where(z < 1, jnp.log1p(-jnp.where(z < 1, z, 0.0)),
                        jnp.log(jnp.where(z > 1, z - 1, 1.0)))  # fmt: skip
    real = jnp.where(z == 0, -1.0, log_abs / safe)
    imag = jnp.where(z > 1, jnp.pi / safe, 0.0)
    return real, imag


def top_eigenpairs(
    matvec: Callable, n: int, k: int, dtype, *, residual: float | None = None
) -> tuple[Array, Array]:
    """The top-k (algebraically largest) eigenpairs of a symmetric operator.

    LOBPCG (`jax.experimental.sparse.linalg.lobpcg_standard`, which needs 5k < n) from a
    fixed start block, so the result is a deterministic function of the operator, as
    an ODE right-hand side must be. It stops once every residual ‖Hu − λu‖ is below
    about `residual`·|λ| (default: the float round-off floor) or after 200 iterations.
    """
    start = jax.random.normal(jax.random.key(0), (n, k), dtype)
    # lobpcg_standard's test is ‖Hu − λu‖ < tol·10n·(|λ| + ‖Hu‖) ≈ tol·20n·|λ|.
    tol = None if residual is None else residual / (20 * n)
    values, vectors, _ = lobpcg_standard(jax.vmap(matvec, 1, 1), start, m=200, tol=tol)
    return values, vectors


class PrincipalFlow(eqx.Module):
    """A solved principal flow.

    **Fields:**

    - `ts`: the requested times.
    - `params`: the real part of the flow at `ts` (a pytree like `params0`, leading axis
      `len(ts)`): on a quadratic it equals GD's iterate θ_k at t = k·lr exactly.
    - `imag`: the imaginary part (same layout); it is zero as long as h·λ < 1 along the
      path, and vanishes at every t = k·lr on a quadratic.
    - `stats`: solver statistics, as for [`corridors.Flow`][].
    - `result`: a [`corridors.RESULTS`][] item (not successful only with
      `throw=False`).
    """

    ts: Float[Array, " times"]
    params: PyTree
    imag: PyTree
    stats: dict
    result: RESULTS


def principal_flow(
    loss: Callable,
    params0: PyTree,
    ts: Float[Array, " times"],
    lr: float | Array,
    args: tuple = (),
    *,
    rank: int | None = None,
    series_order: int = 3,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 100_000,
    solver: diffrax.AbstractSolver | str | None = None,
    throw: bool = True,
) -> PrincipalFlow:
    """Solve the principal flow of gradient descent (Rosca, Wu, Qin & Dherin, TMLR 2023).

    θ' = Σᵢ log(1 − hλᵢ)/(hλᵢ)·⟨∇L, uᵢ⟩uᵢ over the Hessian's eigenpairs (λᵢ, uᵢ). On a
    quadratic GD multiplies the i-th eigencomponent by 1 − hλᵢ per step, which this
    flow does over every time h, at every h: also past 1/λ (the factor is negative) and
    past 2/λ (GD diverges, and so does the flow), and for negative λ. Its expansion in
    h, −Σ_j h^j/(j+1)·H^j∇L, is the H^j∇L part of the modified flows.

    **Complex values.** Where hλᵢ > 1 the coefficient is complex: log(1 − hλ) =
    log(hλ − 1) + iπ. The flow is solved as a real system for its real part x and
    imaginary part y, with the gradient at x + iy continued to first order,
    ∇L(x) + iH(x)y (exact on quadratics). `.params` is x: on a quadratic it equals GD
    at every t = k·h (the component |1 − hλ|^{t/h}cos(πt/h) is (1 − hλ)^k there) and
    `.imag` vanishes at those times; between them the real part oscillates.

    **Discontinuities.** The field is singular where hλᵢ = 1 for some eigenvalue (GD
    annihilates that component in one step; the flow only as t → ∞), and its imaginary
    part switches on there: a non-quadratic loss whose eigenvalue crosses 1/h makes
    the adaptive solver shrink its steps and may end it at `max_steps`. With all
    eigenpairs (`rank=None`) the field is a matrix function of H and stays continuous
    where eigenvalues cross each other; with `rank=k` it jumps where the k-th and
    (k+1)-th eigenvalues cross (the split between exact and series treatment moves).

    **Cost.** `rank=None` forms the dense Hessian (n Hessian-vector products) and
    diagonalizes it (O(n³)) at every field evaluation: small models only. `rank=k`
    takes the top-k eigenpairs by LOBPCG (`jax.experimental.sparse.linalg`, 5k < n)
    and the series −Σ_{j≤series_order} h^j/(j+1)·H^j∇L on their complement;
    `rank=0` is the series alone.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `ts`: strictly increasing flow times (GD step k at t = k·lr).
    - `lr`: the learning rate h > 0.
    - `args`: extra arguments passed to `loss`.
    - `rank`: `None` for all eigenpairs, or k ≥ 0 top eigenpairs plus the series.
    - `series_order`: the highest power of h kept in the series (1 ≤ p); on a quadratic
      `rank=0` with `series_order=p` equals [`corridors.modified_flow`][] of order p.
    - `rtol`, `atol`, `max_steps`, `solver`, `throw`: as in
      [`corridors.gradient_flow`][] (a singular field, hλ = 1, ends the solve).

    **Returns:**

    A [`corridors.PrincipalFlow`][] with `.ts`, `.params` (real part), `.imag`,
    `.stats`, `.result`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    a = jnp.diag(jnp.array([1.0, 15.0]))  # h·λ_max = 1.5: GD oscillates
    loss = lambda x: 0.5 * x @ a @ x
    x0, h = jnp.array([1.0, 1.0]), 0.1
    flow = cr.principal_flow(loss, x0, h * jnp.arange(4.0), h)
    print(float(jnp.abs(flow.params - cr.gd(loss, x0, h, 3)).max()) < 1e-9)  # True
    ```
    """
    where = "principal_flow"
    params0, ts, lr, args, max_steps, solver = _common(
        where, loss, params0, ts, lr, args, rtol, atol, max_steps, solver, throw
    )
    n = sum(leaf.size for leaf in jax.tree.leaves(params0))
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise InvalidInputError(
                f"{where}: `rank` must be None or an int ≥ 0, got {rank!r}."
            )
        if rank > 0 and 5 * rank >= n:
            raise InvalidInputError(
                f"{where}: `rank` = {rank} needs 5·rank < n = {n} (LOBPCG); use "
                "rank=None for the full eigendecomposition of this small model."
            )
    if (
        isinstance(series_order, bool)
        or not isinstance(series_order, int)
        or series_order < 1
    ):
        raise InvalidInputError(
            f"{where}: `series_order` must be an int ≥ 1, got {series_order!r}."
        )
    return _principal_flow(
        loss, params0, ts, lr, args,
        rank=rank, series_order=series_order, rtol=rtol, atol=atol,
        max_steps=max_steps, solver=solver, throw=throw,
    )  # fmt: skip


def principal_field(loss: Callable, args: tuple, unravel: Callable, *, rank, order):
    """The principal flow's real system (t, (x, y), lr) ↦ (x', y') on flat vectors."""

    def grad_flat(x):
        return ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]

    def field(t, state, lr):
        x, y = state
        g, hvp = jax.linearize(grad_flat, x)
        hy = hvp(y)
        if rank is None:
            values, vectors = jnp.linalg.eigh(jax.jacfwd(grad_flat)(x))
        elif rank > 0:
            values, vectors = top_eigenpairs(hvp, x.size, rank, x.dtype)
        if rank is None or rank > 0:
            real, imag = principal_coefficients(lr * values)
            w, v = vectors.T @ g, vectors.T @ hy
            dx = vectors @ (real * w - imag * v)
            dy = vectors @ (imag * w + real * v)
        else:
            dx = dy = jnp.zeros_like(x)
        if rank is not None:
            # −Σ_j h^j/(j+1)·H^j on the complement of the eigenvectors (H leaves it
            # invariant), applied to the real and imaginary parts of ∇L(x) + iH(x)y.
            def series(part):
                if rank > 0:
                    part = part - vectors @ (vectors.T @ part)
                term, total = part, -part
                for j in range(1, order + 1):
                    term = hvp(term)
                    total = total - lr**j / (j + 1) * term
                return total

            dx, dy = dx + series(g), dy + series(hy)
        return dx, dy

    return field


@eqx.filter_jit
def _principal_flow(
    loss, params0, ts, lr, args, *, rank, series_order, rtol, atol, max_steps, solver,
    throw,
):  # fmt: skip
    where = "principal_flow"
    check_loss(where, loss, params0, args)
    start = start_result(loss, params0, args)
    if throw:
        params0 = finish(where, params0, start, throw)
    flat0, unravel = ravel_pytree(params0)
    solved = solve(
        principal_field(loss, args, unravel, rank=rank, order=series_order),
        (flat0, jnp.zeros_like(flat0)), ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=False,
    )  # fmt: skip
    result = first_failure(start, solved.result)
    real, imag = finish(where, solved.ys, result, throw, solve_hints(max_steps))
    return PrincipalFlow(
        ts=ts,
        params=jax.vmap(unravel)(real),
        imag=jax.vmap(unravel)(imag),
        stats=solved.stats,
        result=result,
    )


# ---------------------------------------------------------------------------------
# Reference dispatch


def reference_system(name: str, loss: Callable, params0: PyTree, args: tuple):
    """(field, y0, params_of, velocity_of, solver) of a named reference of GD.

    The field is (t, y, lr) ↦ y'; `params_of(y)` is the params pytree of a state and
    `velocity_of(y')` its velocity (the real part, for the principal flow).
    """
    if name == "central":
        from ._central import central_system

        return central_system(loss, params0, args)
    identity = lambda tree: tree  # noqa: E731
    if name == "principal":
        flat0, unravel = ravel_pytree(params0)
        field = principal_field(loss, args, unravel, rank=None, order=3)
        first = lambda pair: pair[0]  # noqa: E731
        state0 = (flat0, jnp.zeros_like(flat0))
        return field, state0, lambda y: unravel(y[0]), first, diffrax.Dopri8()
    if name == "flow":
        field = gradient_field(loss, args)
    else:
        order = 1 if name == "modified" else int(name[-1])
        field = modified_field_of_order(loss, args, order)
    return field, params0, identity, identity, diffrax.Dopri8()


def reference_path(
    name: str,
    loss: Callable,
    params0: PyTree,
    ts: Array,
    lr: Array,
    args: tuple,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
) -> tuple[PyTree, Array, RESULTS]:
    """The named reference flow of GD at step `lr`: (params at `ts`, stacked; its path
    length ∫‖φ'‖dt at `ts`; the solve's status).

    "flow" is the gradient flow, "modified"/"modified2"/"modified3" the modified flows
    of order 1/2/3, "principal" the principal flow's real part (all eigenpairs: small
    models), "central" the central flow (k = 2, τ = lr/2). Traceable: call it inside a
    jitted kernel, and tie the status on with `finish`.
    """
    field, state0, params_of, velocity_of, solver = reference_system(
        name, loss, params0, args
    )

    def augmented(t, state, lr):
        velocity = field(t, state[0], lr)
        return velocity, tree_norm(velocity_of(velocity))

    solved = solve(
        augmented, (state0, jnp.zeros((), ts.dtype)), ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=False,
    )  # fmt: skip
    states, length = solved.ys
    return jax.vmap(params_of)(states), length, solved.result
