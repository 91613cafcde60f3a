"""Local geometry of a loss: Hessian-vector products, the corridor score, sharpness."""

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PRNGKeyArray, PyTree, Scalar

from ._checks import (
    InvalidInputError,
    as_float_params,
    check_args,
    check_finite,
    check_key,
    check_loss,
    check_lr,
    check_outputs,
    check_same_structure,
    checked_params,
    input_errors,
    named_args,
    traced_floats,
)
from ._lanczos import Sharpness, flat_hvp, init_vectors, plan, solve, start_vector
from ._results import RESULTS


def gradient_function(loss: Callable, args: tuple) -> Callable[[PyTree], PyTree]:
    """θ ↦ ∇L(θ, *args)."""
    return lambda params: jax.grad(loss)(params, *args)


def gradient_and_hvp(
    loss: Callable, params: PyTree, args: tuple
) -> tuple[PyTree, PyTree]:
    """(∇L, H∇L) with one linearization of the gradient (forward-over-reverse)."""
    grad, hvp_at = jax.linearize(gradient_function(loss, args), params)
    return grad, hvp_at(grad)


def value_gradient_and_hvp(
    loss: Callable, params: PyTree, args: tuple
) -> tuple[Array, PyTree, PyTree]:
    """(L, ∇L, H∇L): `gradient_and_hvp` that also keeps the loss (for its checks)."""
    value_and_grad = lambda p: jax.value_and_grad(loss)(p, *args)  # noqa: E731
    (value, grad), linear = jax.linearize(value_and_grad, params)
    return value, grad, linear(grad)[1]


def safe_ratio(numerator: Array, denominator: Array) -> Array:
    """numerator / denominator, and 0 where the denominator is exactly 0 (no NaN, no
    NaN gradient there); a NaN stays NaN, so a failure is never read as a zero."""
    zero = denominator == 0
    return jnp.where(zero, 0.0, numerator / jnp.where(zero, 1, denominator))


def tree_norm(tree: PyTree) -> Array:
    """‖tree‖₂ over all leaves, with a zero (not NaN) gradient at 0; NaN stays NaN."""
    squared = optax.tree.norm(tree, squared=True)
    zero = squared == 0
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1, squared)))


def hvp(loss: Callable, params: PyTree, tangent: PyTree, args: tuple = ()) -> PyTree:
    """Hessian-vector product H(θ)·v, forward-over-reverse.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree of floating arrays.
    - `tangent`: the vector v, a pytree with the same structure and shapes as `params`.
    - `args`: extra arguments passed to `loss`.

    **Returns:**

    H·v as a pytree shaped like `params`. Costs about two gradient evaluations on an
    MLP; up to three where layers are bilinear in activations and weights with costly
    input gradients (strided convolutions on CPU: see `benchmarks/README.md`).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    A = jnp.array([[2.0, 1.0], [1.0, 3.0]])
    loss = lambda p: 0.5 * p @ A @ p  # H = A everywhere
    print(cr.hvp(loss, jnp.zeros(2), jnp.array([1.0, -1.0])))  # [ 1. -2.] = A·v
    ```
    """
    params = checked_params("hvp", loss, params, args, "params", finite=False)
    args = traced_floats(args)
    tangent = as_float_params("hvp", tangent, "tangent")
    check_same_structure("hvp", "params", params, "tangent", tangent)
    return _hvp(loss, params, tangent, args)


@input_errors
@eqx.filter_jit
def _hvp(loss, params, tangent, args):
    where = "hvp"
    check_loss(where, loss, params, args)
    grad, product = jax.jvp(gradient_function(loss, args), (params,), (tangent,))
    return check_outputs(
        where,
        (grad, product),
        [("params", params), ("tangent", tangent), *named_args(args)],
        "the gradient or H·tangent",
        tie=product,
    )


def corridor_score(loss: Callable, params: PyTree, args: tuple = ()) -> Scalar:
    """How far θ is from a corridor: ‖H∇L‖ / ‖∇L‖.

    Zero exactly in a corridor (H∇L = 0, where gradient descent follows the gradient
    flow); 0.0 where ∇L = 0. The ratio is scale-free in the step size: one GD step of
    size h leaves the flow by about (h²/2)·‖H∇L‖ = (h²/2)·score·‖∇L‖.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree.
    - `args`: extra arguments passed to `loss`.

    **Returns:**

    A scalar ≥ 0.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    from corridors.landscapes import Cone

    cone = Cone(jnp.zeros(2), 1.0)  # L = ‖θ‖: H∇L = 0 off the apex
    print(cr.corridor_score(cone.loss, jnp.array([3.0, 4.0])))  # ≈ 0.0: float32 round-off
    print(cr.corridor_score(lambda p: jnp.sum(p**2), jnp.array([3.0, 4.0])))  # 2.0: H = 2I
    ```
    """
    where = "corridor_score"
    params = checked_params(where, loss, params, args, "params", finite=False)
    args = traced_floats(args)
    return _corridor_score(loss, params, args)


@input_errors
@eqx.filter_jit
def _corridor_score(loss, params, args):
    where = "corridor_score"
    check_loss(where, loss, params, args)
    value, grad, hessian_grad = value_gradient_and_hvp(loss, params, args)
    score = safe_ratio(tree_norm(hessian_grad), tree_norm(grad))
    return check_outputs(
        where,
        (value, grad, hessian_grad, score),
        [("params", params), *named_args(args)],
        "the loss, its gradient or H∇L",
        tie=score,
    )


def predicted_step_drift(
    loss: Callable, params: PyTree, lr: float | Array, args: tuple = ()
) -> Scalar:
    """Leading-order distance between one GD step and the gradient flow: (lr²/2)‖H∇L‖.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ.
    - `lr`: the learning rate h > 0.
    - `args`: extra arguments passed to `loss`.

    **Returns:**

    A scalar; the true one-step drift is this plus O(lr³).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)  # H∇L = θ; the flow is θ(t) = e^{−t}·θ_0
    print(cr.predicted_step_drift(loss, jnp.array([1.0]), 0.1))  # 0.005 = (0.1²/2)·1
    print(jnp.exp(-0.1) - 0.9)  # ≈ 0.00484: the true drift of the GD step 1 → 0.9
    ```
    """
    where = "predicted_step_drift"
    params = checked_params(where, loss, params, args, "params", finite=False)
    args = traced_floats(args)
    lr = check_lr(where, lr)
    return _predicted_step_drift(loss, params, jnp.asarray(lr), args)


@input_errors
@eqx.filter_jit
def _predicted_step_drift(loss, params, lr, args):
    where = "predicted_step_drift"
    check_loss(where, loss, params, args)
    value, grad, hessian_grad = value_gradient_and_hvp(loss, params, args)
    drift = 0.5 * lr**2 * tree_norm(hessian_grad)
    return check_outputs(
        where,
        (value, grad, hessian_grad, drift),
        [("params", params), *named_args(args)],
        "the loss, its gradient or H∇L",
        tie=drift,
    )


def sharpness(
    loss: Callable,
    params: PyTree,
    args: tuple = (),
    *,
    k: int = 1,
    key: PRNGKeyArray | None = None,
    tol: float = 1e-6,
    which: Literal["largest", "smallest", "magnitude"] = "largest",
    init: Sharpness | PyTree | None = None,
    method: Literal["auto", "lanczos", "restarted"] = "auto",
    max_iter: int | None = None,
    throw: bool = True,
    return_result: bool = False,
) -> Array | Sharpness:
    """The `k` extreme Hessian eigenvalues: by default the algebraically largest, in
    descending order.

    Lanczos with full reorthogonalization on Hessian-vector products only; the Hessian
    is never formed. Each Ritz value θᵢ is returned once its residual ‖Hu − θu‖ is at
    most `tol`·|θᵢ| (so |θᵢ − λᵢ| ≤ `tol`·|θᵢ|), or at the float round-off floor
    10·eps·‖H‖. Repeated eigenvalues are found through restarts on breakdown.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree with n entries in total.
    - `args`: extra arguments passed to `loss`.
    - `k`: how many eigenvalues, 1 ≤ k ≤ n.
    - `key`: PRNG key for the start vector (default `jax.random.key(0)`).
    - `tol`: relative residual tolerance.
    - `which`: `"largest"` (descending), `"smallest"` (ascending: the most negative
      curvature first) or `"magnitude"` (by descending |λ|).
    - `init`: warm start: the `Sharpness` result of a previous call (at nearby params),
      or vectors shaped like `params` (one, or several stacked on a leading axis). The
      solve starts from their sum and tests convergence from its second product on.
    - `method`: `"lanczos"` keeps the whole Krylov basis, (`max_iter` + 1)·n floats,
      and needs the fewest products; `"restarted"` (thick-restart Lanczos) keeps
      k + 5 vectors, memory O(k·n) whatever the iteration count, at the price of a few
      more products; `"auto"` (default) keeps the whole basis while it fits in
      2²⁵ floats (n ≲ 110,000 at the default `max_iter`) and restarts beyond. A
      restarted basis never breaks down, so beyond the first copy an exactly repeated
      eigenvalue is found only through round-off: use `"lanczos"` for those.
    - `max_iter`: cap on Hessian-vector products (default min(n, max(300, 10k)) for
      `"lanczos"`, max(300, 10k) for `"restarted"`).
    - `throw`: if True, not converging within `max_iter` is an error; if False,
      a `Sharpness` is returned whose `.result` says so.
    - `return_result`: return the full `Sharpness` (eigenvectors, residuals, product
      count) even when `throw=True`.

    **Returns:**

    An array of shape `(k,)`; a `Sharpness` if `throw=False` or `return_result=True`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * (3 * p[0] ** 2 + p[1] ** 2 - 2 * p[2] ** 2)
    print(cr.sharpness(loss, jnp.ones(3), k=2))  # ≈ [3. 1.]
    first = cr.sharpness(loss, jnp.ones(3), which="smallest", return_result=True)
    print(first.eigenvalues)  # ≈ [-2.]
    again = cr.sharpness(loss, jnp.ones(3), which="smallest", init=first, throw=False)
    print(again.hvps, again.result == cr.RESULTS.successful)  # 2 True
    ```
    """
    params = checked_params("sharpness", loss, params, args, "params")
    args = traced_floats(args)
    n = sum(leaf.size for leaf in jax.tree.leaves(params))
    options = plan(
        "sharpness",
        n,
        k=k,
        tol=tol,
        which=which,
        method=method,
        max_iter=max_iter,
        warm=init is not None,
    )
    for name, flag in (("throw", throw), ("return_result", return_result)):
        if not isinstance(flag, bool):
            raise InvalidInputError(
                f"sharpness: `{name}` must be a bool, got {flag!r}."
            )
    start = init_vectors("sharpness", params, init)
    key = jax.random.key(0) if key is None else check_key("sharpness", key)
    out = _sharpness(loss, params, args, start, key, options=options)
    if throw:
        out = eqx.error_if(
            out,
            out.result != RESULTS.successful,
            f"sharpness: Lanczos did not reach tol={tol} within max_iter="
            f"{options.max_iter} Hessian-vector products; raise `max_iter` or `tol` "
            "(float32 Hessians rarely reach 1e-6).",
        )
    return out if (return_result or not throw) else out.eigenvalues


@eqx.filter_jit
def _sharpness(loss, params, args, init, key, *, options):
    check_loss("sharpness", loss, params, args)
    flat, hvp_flat = flat_hvp(loss, params, args)
    start_key, restart_key = jax.random.split(key)
    start = start_vector(init, start_key, flat.size, flat.dtype)
    found = solve(hvp_flat, start, restart_key, options)
    unravel = ravel_pytree(params)[1]
    estimate = Sharpness(
        eigenvalues=found.eigenvalues,
        eigenvectors=jax.vmap(unravel)(found.eigenvectors),
        residuals=found.residuals,
        hvps=found.iterations,
        result=RESULTS.where(
            found.converged, RESULTS.successful, RESULTS.not_converged
        ),
    )
    # Tied to the output: a NaN in `args` or `params` need not reach H·v (a quadratic's
    # does not depend on either), so a check tied to the inputs would be optimized away.
    estimate = check_finite("sharpness", "params", params, tie=estimate)
    return check_args("sharpness", args, estimate)
