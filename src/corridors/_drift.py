"""How far discrete methods drift from the gradient flow, and SGD's implicit regularizers."""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    any_nonfinite,
    check_beta,
    check_loss,
    check_lr_array,
    check_positive,
    check_steps,
    checked_params,
    finite_scalar_or_raise,
    float_dtype,
    traced_floats,
)
from ._flows import gradient_field, modified_field, solve
from ._geometry import safe_ratio, tree_norm
from ._steppers import DIVERGED, batch_tuple, prepared, rk_steps, run_sgd
from ._tableaux import NAMED_METHODS, explicit_solver

_MOMENTUM_METHODS = ("momentum", "nesterov")


class Drift(eqx.Module):
    """Distance between a discrete method's iterates and a reference flow.

    **Fields:**

    - `ts`: flow time matched to each iterate, shape `(n + 1,)`: k·lr for GD and
      Runge–Kutta; lr·Σ_{j=1..k}(1 − β^j)/(1 − β) for heavy-ball momentum (the
      distance it travels along a corridor), lr·Σ_{j=1..k}(1 − β^{j+1})/(1 − β) for
      Nesterov.
    - `distance`: ‖θ_k − φ(ts_k)‖₂ over all leaves.
    - `relative`: `distance` divided by the reference path length ∫₀^{ts_k}‖φ'‖dt
      (0 at k = 0).
    - `loss_method`, `loss_reference`: the loss along the iterates and the reference.
    - `iterates`, `reference`: θ_k and φ(ts_k), pytrees with leading axis n + 1.
    """

    ts: Float[Array, " n_plus_1"]
    distance: Float[Array, " n_plus_1"]
    relative: Float[Array, " n_plus_1"]
    loss_method: Float[Array, " n_plus_1"]
    loss_reference: Float[Array, " n_plus_1"]
    iterates: PyTree
    reference: PyTree


def matched_times(
    method: str, lr: Array, beta: Array | None, n_steps: int
) -> Float[Array, " n_plus_1"]:
    """Flow time reached after k = 0..n steps of `method` along a corridor."""
    k = jnp.arange(1, n_steps + 1, dtype=lr.dtype)
    if method == "momentum":
        speeds = (1 - beta**k) / (1 - beta)
    elif method == "nesterov":
        speeds = (1 - beta ** (k + 1)) / (1 - beta)
    else:
        speeds = jnp.ones_like(k)
    return jnp.concatenate([jnp.zeros(1, lr.dtype), lr * jnp.cumsum(speeds)])


def tree_distances(stacked_a: PyTree, stacked_b: PyTree) -> Array:
    """‖a_k − b_k‖₂ over all leaves, for every index k of the leading axis."""
    return jax.vmap(lambda a, b: tree_norm(optax.tree.sub(a, b)))(stacked_a, stacked_b)


def _with_arclength(field: Callable) -> Callable:
    """The field on (θ, s) with s' = ‖θ'‖, so s(t) is the path length of the flow."""

    def augmented(t, state, field_args):
        velocity = field(t, state[0], field_args)
        return velocity, tree_norm(velocity)

    return augmented


def measure_drift(
    loss: Callable,
    params0: PyTree,
    lr: float | Array,
    n_steps: int,
    args: tuple = (),
    *,
    method: str | diffrax.ButcherTableau = "gd",
    reference: str = "flow",
    beta: float | Array = 0.9,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 100_000,
) -> Drift:
    """Run a discrete method and measure its distance from the gradient flow.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the learning rate (step size) > 0.
    - `n_steps`: number of steps, a static int ≥ 1.
    - `args`: extra arguments passed to `loss`.
    - `method`: "gd", "momentum" (heavy ball from rest), "nesterov", a Runge–Kutta
      name ("euler", "midpoint", "heun", "ralston", "rk4") or a
      `diffrax.ButcherTableau`.
    - `reference`: "flow" for the gradient flow, or "modified" for the first-order
      modified flow θ' = −∇L − (lr/2)H∇L of gradient descent at this lr (GD only).
    - `beta`: momentum coefficient in [0, 1) for "momentum" and "nesterov".
    - `rtol`, `atol`, `max_steps`: for the adaptive reference solve.

    **Returns:**

    A [`corridors.Drift`][].
    """
    where = "measure_drift"
    params0, lr, args = prepared(where, loss, params0, lr, args)
    n_steps = check_steps(where, "n_steps", n_steps, minimum=1)
    if reference not in ("flow", "modified"):
        raise InvalidInputError(
            f"{where}: `reference` must be 'flow' or 'modified', got {reference!r}."
        )
    if isinstance(method, str) and method not in (
        "gd",
        *_MOMENTUM_METHODS,
        *NAMED_METHODS,
    ):
        raise InvalidInputError(
            f"{where}: unknown `method` {method!r}; choose 'gd', 'momentum', 'nesterov', "
            f"one of {sorted(NAMED_METHODS)} or pass a diffrax.ButcherTableau."
        )
    if reference == "modified" and method not in ("gd", "euler"):
        raise InvalidInputError(
            f"{where}: reference='modified' is the first-order modified flow of gradient "
            f"descent; it is not defined here for method={method!r}."
        )
    solver = None
    beta_array = None
    if method in _MOMENTUM_METHODS:
        beta_array = jnp.asarray(check_beta(where, beta), lr.dtype)
    elif method != "gd":
        solver = explicit_solver(method)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        check_positive(where, name, tol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    return _measure_drift(
        loss,
        params0,
        lr,
        beta_array,
        args,
        method=method if isinstance(method, str) else "tableau",
        solver=solver,
        n_steps=n_steps,
        modified=reference == "modified",
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
    )


@eqx.filter_jit
def _measure_drift(
    loss,
    params0,
    lr,
    beta,
    args,
    *,
    method,
    solver,
    n_steps,
    modified,
    rtol,
    atol,
    max_steps,
):
    if method in _MOMENTUM_METHODS:
        iterates = run_sgd(
            "measure_drift", loss, params0, lr, n_steps, args,
            beta=beta, nesterov=method == "nesterov",
        )  # fmt: skip
    elif solver is None:
        iterates = run_sgd("measure_drift", loss, params0, lr, n_steps, args)
    else:
        iterates = rk_steps(loss, params0, lr, n_steps, args, solver)
    ts = matched_times(method, lr, beta, n_steps)
    field = modified_field(loss, args) if modified else gradient_field(loss, args)
    reference, path_length = solve(
        "measure_drift",
        _with_arclength(field),
        (params0, jnp.zeros((), lr.dtype)),
        ts,
        lr,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        solver=diffrax.Dopri8(),
        dense=False,
    ).ys
    distance = tree_distances(iterates, reference)
    batched_loss = jax.vmap(lambda p: loss(p, *args))
    return Drift(
        ts=ts,
        distance=distance,
        relative=safe_ratio(distance, path_length),
        loss_method=batched_loss(iterates),
        loss_reference=batched_loss(reference),
        iterates=iterates,
        reference=reference,
    )


class SweepDrift(eqx.Module):
    """Fixed-horizon drift of gradient descent for several learning rates.

    Behaves as the array `distance` under `numpy.asarray`, `jax.numpy.asarray`,
    indexing, `len` and iteration.

    **Fields:**

    - `lrs`: the learning rates, shape `(r,)`.
    - `n_steps`: steps taken at each lr, floor(horizon / lr), shape `(r,)`.
    - `ts`: flow time reached, n_steps·lr.
    - `distance`: ‖θ_n − φ(n·lr)‖₂ for each lr.
    """

    lrs: Float[Array, " r"]
    n_steps: Array
    ts: Float[Array, " r"]
    distance: Float[Array, " r"]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.distance, dtype=dtype)

    def __jax_array__(self):
        return self.distance

    def __len__(self):
        return len(self.distance)

    def __getitem__(self, index):
        return self.distance[index]

    def __iter__(self):
        return iter(self.distance)


def sweep_drift(
    loss: Callable,
    params0: PyTree,
    lrs: Any,
    horizon: float,
    args: tuple = (),
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 100_000,
    batch_size: int | None = None,
) -> SweepDrift:
    """Drift of gradient descent from the gradient flow at a fixed horizon, per lr.

    For each lr, n = floor(horizon / lr) GD steps and the distance ‖θ_n − φ(n·lr)‖.
    One gradient-flow solve serves every lr (saved at every distinct n·lr), and the GD
    runs are vmapped over lr, each for its own n steps.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lrs`: concrete learning rates (they set the step counts), each in (0, horizon].
    - `horizon`: flow time T > 0.
    - `args`: extra arguments passed to `loss`.
    - `rtol`, `atol`, `max_steps`: for the adaptive flow solve.
    - `batch_size`: `None` (default) vmaps all GD runs together: a batch runs until its
      longest run ends, which suits accelerators. An int runs the learning rates, sorted
      by step count, in vmapped batches of that size one after another, which wastes
      fewer steps on a CPU (4 was fastest in `benchmarks/sweep.py`).

    **Returns:**

    A [`corridors.SweepDrift`][], usable directly as the array of distances.
    """
    where = "sweep_drift"
    lr_values = check_lr_array(where, "lrs", lrs)
    horizon = finite_scalar_or_raise(where, "horizon", horizon)
    check_positive(where, "horizon", horizon)
    params0, _, args = prepared(where, loss, params0, 1.0, args)
    steps = np.floor(horizon / lr_values).astype(int)
    if np.any(steps < 1):
        raise InvalidInputError(
            f"{where}: every lr must be ≤ `horizon` = {horizon} (n ≥ 1 step)."
        )
    for name, tol in (("rtol", rtol), ("atol", atol)):
        check_positive(where, name, tol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    if batch_size is not None:
        batch_size = check_steps(where, "batch_size", batch_size, minimum=1)
    dtype = float_dtype(params0)
    # The flow is saved at every time n·lr, sorted, after 0 where it starts. Repeated
    # times stay (diffrax accepts them), so the shapes, and the compilation, depend
    # only on how many lrs there are.
    unsorted = np.append(0.0, steps * lr_values)
    order = np.argsort(unsorted, kind="stable")
    times, where_saved = unsorted[order], np.argsort(order)
    return _sweep_drift(
        loss,
        params0,
        jnp.asarray(lr_values, dtype),
        jnp.asarray(steps),
        jnp.asarray(times, dtype),
        jnp.asarray(where_saved[1:]),
        args,
        batch_size=batch_size,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
    )


@eqx.filter_jit
def _sweep_drift(
    loss,
    params0,
    lrs,
    steps,
    times,
    where_saved,
    args,
    *,
    batch_size,
    rtol,
    atol,
    max_steps,
):
    check_loss("sweep_drift", loss, params0, args)
    grad = jax.grad(loss)

    def final_iterate(lr_and_steps):
        lr, n = lr_and_steps
        # GD for this lr's own n steps; vmapped, the batch runs until its longest ends.
        step = lambda k, params: optax.tree.add_scale(params, -lr, grad(params, *args))  # noqa: E731
        return jax.lax.fori_loop(0, n, step, params0)

    # Batches of similar step counts waste little; batch_size=None is one vmap over all.
    order = jnp.argsort(steps)
    finals = jax.lax.map(
        final_iterate,
        (lrs[order], steps[order]),
        batch_size=lrs.shape[0] if batch_size is None else batch_size,
    )
    finals = jax.tree.map(lambda leaf: leaf[jnp.argsort(order)], finals)
    finals = eqx.error_if(
        finals, any_nonfinite(finals), DIVERGED.format(where="sweep_drift")
    )
    flow = solve(
        "sweep_drift",
        gradient_field(loss, args),
        params0,
        times,
        None,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        solver=diffrax.Dopri8(),
        dense=False,
    ).ys
    flow = jax.tree.map(lambda leaf: leaf[where_saved], flow)
    return SweepDrift(
        lrs=lrs,
        n_steps=steps,
        ts=times[where_saved],
        distance=tree_distances(finals, flow),
    )


class SGDRegularizers(eqx.Module):
    """The two implicit regularizers of one SGD epoch (Smith et al., 2021).

    With m equal-size batches, batch losses L_k and full-batch loss L = (1/m)Σ L_k, SGD
    with step lr follows, to first order, the gradient flow of
    L + (lr/4)‖∇L‖² + (lr/4m)Σ_k‖∇L_k − ∇L‖².

    **Fields:**

    - `full_batch`: (lr/4)‖∇L‖².
    - `per_batch`: (lr/4m)Σ_k‖∇L_k − ∇L‖².
    - `full_batch_grad`: its gradient (lr/2)H∇L, a pytree — zero in a corridor.
    - `per_batch_grad`: the gradient of `per_batch`, a pytree — need not vanish there.
    """

    full_batch: Array
    per_batch: Array
    full_batch_grad: PyTree
    per_batch_grad: PyTree


def sgd_regularizers(
    loss: Callable, params: PyTree, batches: Any, lr: float | Array, args: tuple = ()
) -> SGDRegularizers:
    """Evaluate SGD's two implicit-regularizer terms and their gradients at `params`.

    **Arguments:**

    - `loss`: `loss(params, *batch, *args) -> scalar`, as in [`corridors.sgd`][].
    - `params`: the point θ.
    - `batches`: a tuple of arrays sharing a leading axis of length m (the batches of
      one epoch); the full-batch loss is the mean of the m batch losses.
    - `lr`: the learning rate > 0.
    - `args`: extra arguments passed to `loss` after the batch.

    **Returns:**

    A [`corridors.SGDRegularizers`][]: in a corridor of the full-batch loss
    `full_batch_grad` vanishes while `per_batch` and `per_batch_grad` need not.
    """
    where = "sgd_regularizers"
    batches = batch_tuple(where, batches)
    params = checked_params(where, loss, params, args, "params")
    args = traced_floats(args)
    lr = check_positive(where, "lr", lr)
    return _sgd_regularizers(
        loss, params, batches, jnp.asarray(lr, float_dtype(params)), args
    )


@eqx.filter_jit
def _sgd_regularizers(loss, params, batches, lr, args):
    first_batch = jax.tree.map(lambda x: x[0], batches)
    check_loss("sgd_regularizers", loss, params, (*first_batch, *args))

    def batch_grads(theta):
        return jax.vmap(lambda *batch: jax.grad(loss)(theta, *batch, *args))(*batches)

    def full_batch(theta):
        mean_grad = jax.tree.map(lambda g: g.mean(0), batch_grads(theta))
        return 0.25 * lr * optax.tree.norm(mean_grad, squared=True)

    def per_batch(theta):
        grads = batch_grads(theta)
        deviations = jax.tree.map(lambda g: g - g.mean(0), grads)
        return (
            0.25
            * lr
            * jax.vmap(lambda d: optax.tree.norm(d, squared=True))(deviations).mean()
        )

    full_value, full_grad = jax.value_and_grad(full_batch)(params)
    per_value, per_grad = jax.value_and_grad(per_batch)(params)
    return SGDRegularizers(full_value, per_value, full_grad, per_grad)
