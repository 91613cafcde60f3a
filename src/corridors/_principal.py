"""The principal flow of gradient descent (Rosca, Wu, Qin & Dherin, TMLR 2023)."""

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    check_loss,
)
from ._flows import (
    checked_flow,
    solve,
    solve_hints,
    start_result,
)
from ._lanczos import top_eigenpairs
from ._modified import flow_inputs
from ._results import RESULTS, first_failure


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
    rtol: float | None = None,
    atol: float | None = None,
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
    takes the top-k eigenpairs by Lanczos from a fixed start (the one of
    [`corridors.sharpness`][], full basis, 32 to 256 Hessian-vector products to
    residuals 0.1·√eps; 5k < n), as [`corridors.central_flow`][] does, and the
    series −Σ_{j≤series_order} h^j/(j+1)·H^j∇L on their complement;
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
    # exact on a quadratic: equal up to float32 round-off
    print(float(jnp.abs(flow.params - cr.gd(loss, x0, h, 3)).max()) < 1e-4)  # True
    ```
    """
    where = "principal_flow"
    params0, ts, lr, args, rtol, atol, max_steps, solver = flow_inputs(
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
                f"{where}: `rank` = {rank} needs 5·rank < n = {n} (Lanczos); use "
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
    flow = _principal_flow(
        loss, params0, ts, lr, args,
        rank=rank, series_order=series_order, rtol=rtol, atol=atol,
        max_steps=max_steps, solver=solver,
    )  # fmt: skip
    return checked_flow(where, flow, throw, solve_hints(max_steps))


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
):  # fmt: skip
    where = "principal_flow"
    check_loss(where, loss, params0, args)
    start = start_result(loss, params0, args)
    flat0, unravel = ravel_pytree(params0)
    solved = solve(
        principal_field(loss, args, unravel, rank=rank, order=series_order),
        (flat0, jnp.zeros_like(flat0)), ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=False,
    )  # fmt: skip
    result = first_failure(start, solved.result)
    real, imag = solved.ys
    return PrincipalFlow(
        ts=ts,
        params=jax.vmap(unravel)(real),
        imag=jax.vmap(unravel)(imag),
        stats=solved.stats,
        result=result,
    )
