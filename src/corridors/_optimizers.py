"""Any optimizer as a method: optax transformations and step functions, and the flow
time matched to each of their iterates (`times=`).

A method is one of
- a built-in name or tableau ("gd", "momentum", "rk4", a `diffrax.ButcherTableau`):
  run by `corridors`' own steppers, clocked by `corridors.matched_times`;
- an `optax.GradientTransformation`: `update(grads, state, params)`, with
  `value=loss` passed to a `GradientTransformationExtraArgs` (the Polyak family, CLR);
  `optax.lookahead` is run on `optax.LookaheadParams` and measured at its fast weights;
- a step function `step(params, state, grads) -> (params, state)`, with its state
  starting at `()`, or a pair `(step, state0)` for a stateful one.
"""

import contextlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PyTree

from ._checks import (
    InvalidInputError,
    any_nonfinite,
    check_args,
    check_loss,
    check_steps,
    check_storage,
    checked_params,
    traced_floats,
)
from ._methods import MethodInfo
from ._step_drift import solve_step
from ._steppers import (
    checked_path,
    first_step,
    nan_at_finite_point,
    no_step,
    path_result,
    stacked,
)


class Stepper(NamedTuple):
    """A method in one shape: `step(params, state, grads, value) -> (params, state,
    iterate)`, where `iterate` is the point measured (the params, or lookahead's fast
    weights)."""

    step: Callable
    state0: PyTree
    params0: PyTree  # what `step` carries (the params, or LookaheadParams)


def is_builtin(method: Any) -> bool:
    """A name, a ButcherTableau or a diffrax solver: run by corridors' own steppers."""
    return isinstance(method, (str, diffrax.ButcherTableau, diffrax.AbstractSolver))


def as_stepper(
    where: str, method: Any, params0: PyTree, *, names_allowed: bool = True
) -> Stepper:
    """The `Stepper` of an optax transformation or a step function, checked on
    `params0` (abstractly, at no cost) so that errors name `where`; `names_allowed`:
    whether `where` also takes built-in method names (said in the error)."""
    if isinstance(method, optax.GradientTransformation):
        stepper = _optax_stepper(where, method, params0)
    elif (
        isinstance(method, tuple) and len(method) == 2 and callable(method[0])
    ) or callable(method):
        step, state0 = method if isinstance(method, tuple) else (method, ())
        stepper = Stepper(jax.tree_util.Partial(_user_step, step), state0, params0)
    else:
        names = "a method name, a diffrax.ButcherTableau, " if names_allowed else ""
        raise InvalidInputError(
            f"{where}: `method` must be {names}an optax.GradientTransformation or a "
            "step function `step(params, state, grads) -> (params, state)` (or a pair "
            f"(step, state0)), got {type(method).__name__}."
        )
    try:
        out = jax.eval_shape(
            stepper.step, stepper.params0, stepper.state0, params0, jnp.zeros(())
        )
    except Exception as error:  # re-raised naming the function the user called
        raise InvalidInputError(
            f"{where}: one step of `method` from `params0` failed: {error}"
        ) from error
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)  # noqa: E731
    if jax.tree.structure(out[2]) != jax.tree.structure(params0) or shapes(
        out[2]
    ) != shapes(params0):
        raise InvalidInputError(
            f"{where}: a step of `method` must return params with the structure and "
            f"shapes of `params0`; got {shapes(out[2])}."
        )
    return stepper


def _optax_stepper(where: str, optimizer, params0: PyTree) -> Stepper:
    try:
        with _quiet("absl"):  # lookahead logs that it met plain params: expected
            state0 = optimizer.init(params0)
    except Exception as error:
        raise InvalidInputError(
            f"{where}: `method.init(params0)` failed: {error}"
        ) from error
    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)
    if isinstance(state0, optax.LookaheadState):
        synced = optax.LookaheadParams.init_synced(params0)
        step = jax.tree_util.Partial(_lookahead_step, optimizer)
        return Stepper(step, optimizer.init(synced), synced)
    return Stepper(
        jax.tree_util.Partial(_optax_step, optimizer, extra), state0, params0
    )


# The steps are module-level functions bound with `jax.tree_util.Partial`: the same
# optimizer object (or step function) then gives an equal `Stepper` and the jitted
# kernels reuse their compiled code, where a fresh closure per call recompiled.
def _user_step(step, params, state, grads, value):
    params, state = step(params, state, grads)
    return params, state, params


def _lookahead_step(optimizer, params, state, grads, value):
    updates, state = optimizer.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    return params, state, params.fast


def _optax_step(optimizer, extra, params, state, grads, value):
    options = {"value": value} if extra else {}
    updates, state = optimizer.update(grads, state, params, **options)
    params = optax.apply_updates(params, updates)
    return params, state, params


OPTIMIZER = MethodInfo("optimizer", "optimizer", None, False)
"""The registry entry of a user's optimizer: no known order, clock k·lr by default."""


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_stepper(
    where: str, loss: Callable, params0: PyTree, n_steps: int, args: tuple, stepper
):
    """θ_0..θ_n of `stepper` on `loss` (leading axis n + 1), the path's status and the
    first failing step (−1 if none), as `run_sgd` returns them; it raises nothing.

    Gradients (and the loss, for `value=`) are taken at the measured iterate.
    """
    check_loss(where, loss, params0, args)
    params0 = check_args(where, args, params0)
    value_and_grad = jax.value_and_grad(loss)

    def body(carry, _):
        carried, state, iterate, nan_loss, failed_at, k = carry
        value, grads = value_and_grad(iterate, *args)
        nan_here = nan_at_finite_point(value, grads, iterate)
        carried, state, new = stepper.step(carried, state, grads, value)
        failed_at = first_step(failed_at, k, nan_here | any_nonfinite(new))
        return (carried, state, new, nan_loss | nan_here, failed_at, k + 1), new

    init = (stepper.params0, stepper.state0, params0, jnp.zeros((), bool), *no_step())
    (*_, nan_loss, failed_at, _), steps = jax.lax.scan(body, init, None, n_steps)
    iterates = stacked(params0, steps)
    return iterates, path_result(iterates, nan_loss), failed_at


@eqx.filter_jit
def _optimizer_path(where, loss, params0, n_steps, args, stepper):
    return run_stepper(where, loss, params0, n_steps, args, stepper)


def optimizer_path(
    loss: Callable, params0: PyTree, method: Any, n_steps: int, args: tuple = ()
) -> PyTree:
    """The iterates of any optimizer: the sibling of `gd`, `momentum` and `sgd` for an
    `optax.GradientTransformation` or a step function.

    Each step takes the gradient (and, for a `GradientTransformationExtraArgs` such as
    `optax.polyak_sgd` or `corridors.lr`'s CLR, the loss as `value=`) at the current
    iterate. These are the iterates `measure_drift(..., method=method)` measures.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `method`: an `optax.GradientTransformation` (`optax.lookahead` is run on
      `optax.LookaheadParams` and its fast weights are returned), or a step function
      `step(params, state, grads) -> (params, state)` with its state starting at `()`,
      or a pair `(step, state0)`.
    - `n_steps`: number of steps (a static int ≥ 0).
    - `args`: extra arguments passed to `loss`.

    **Returns:**

    The iterates θ_0, …, θ_n: a pytree like `params0` with leading axis `n_steps + 1`.
    A NaN loss or gradient at a finite iterate, or iterates that overflow, raise an
    error naming the first failing step (under `jax.jit`, an `equinox` runtime error).

    **Example:**

    ```python
    import jax.numpy as jnp
    import optax
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)
    theta0 = jnp.array([1.0, -2.0])
    path = cr.optimizer_path(loss, theta0, optax.sgd(0.1), 3)
    print(jnp.allclose(path, cr.gd(loss, theta0, 0.1, 3)))  # True: the same GD
    adam = cr.optimizer_path(loss, theta0, optax.adam(0.1), 1)
    print(adam[1])  # ≈ [ 0.9 -1.9]: Adam's first step is lr·sign(∇L)
    ```
    """
    where = "optimizer_path"
    params0 = checked_params(where, loss, params0, args)
    n_steps = check_steps(where, "n_steps", n_steps)
    check_storage(where, f"n_steps = {n_steps:,}", n_steps + 1, params0)
    stepper = as_stepper(where, method, params0, names_allowed=False)
    args = traced_floats(args)
    path = _optimizer_path(where, loss, params0, n_steps, args, stepper)
    return checked_path(where, *path)


def matched(times, clock, loss, iterates, args, options):
    """The flow times of the iterates: `clock` (the method's own), the checked
    `times` array, or for "nearest" the projections on the flow path."""
    if times is None:
        return clock
    if isinstance(times, str):
        rtol, atol = (jnp.asarray(options[k], clock.dtype) for k in ("rtol", "atol"))
        return nearest_times(loss, iterates, args, rtol, atol)
    return times


def checked_times(where: str, times: Any, n_steps: int, dtype: Any) -> Any:
    """`times=` as None, "nearest" or an array of shape (n + 1,): finite, ≥ 0, from
    0 (in any order: lookahead's fast weights step back). A callable is evaluated at
    k = 0..n."""
    if times is None or (isinstance(times, str) and times == "nearest"):
        return times
    if isinstance(times, str):
        raise InvalidInputError(
            f"{where}: `times` must be None, 'nearest', an array or a callable of k, "
            f"got {times!r}."
        )
    if callable(times):
        try:
            times = times(jnp.arange(n_steps + 1))
        except Exception as error:
            raise InvalidInputError(
                f"{where}: `times(k)` failed on k = arange({n_steps + 1}): {error}"
            ) from error
    times = jnp.asarray(times, dtype)
    if times.shape != (n_steps + 1,):
        raise InvalidInputError(
            f"{where}: `times` must give one flow time per iterate, shape "
            f"({n_steps + 1},), got {times.shape}."
        )
    ok = jnp.all(jnp.isfinite(times)) & (times[0] == 0) & jnp.all(times >= 0)
    return eqx.error_if(
        times, ~ok, f"{where}: `times` must be finite and ≥ 0, starting at 0."
    )


def in_time_order(reference_path: Callable, ts: Array):
    """`reference_path(ts) -> (path, length, status)` for times in any order: solved
    at the sorted times (a flow solve needs them so), returned in the given order."""
    order = jnp.argsort(ts)
    inverse = jnp.argsort(order)
    path, length, status = reference_path(ts[order])
    return jax.tree.map(lambda x: x[inverse], path), length[inverse], status


def nearest_times(
    loss: Callable, iterates: PyTree, args: tuple, rtol: Array, atol: Array
) -> Array:
    """For each iterate θ_k, the flow time t_k ≥ t_{k−1} whose flow point is nearest.

    The flow is followed piece by piece: from φ(t_{k−1}), the nearest point to θ_k on
    the flow ahead (`step_drift(time="nearest")`'s search), then on from there. In a
    corridor the flow is a line and the times are exact.
    """
    params0 = jax.tree.map(lambda leaf: leaf[0], iterates)
    rest = jax.tree.map(lambda leaf: leaf[1:], iterates)

    def body(carry, iterate):
        point, time = carry
        update = optax.tree.sub(iterate, point)
        out, reached = solve_step(
            loss, point, update, None, args, rtol, atol,
            mode="nearest", solver=None, max_steps=256,
        )  # fmt: skip
        time = time + out.time
        return (reached, time), time

    zero = jnp.zeros((), jax.tree.leaves(iterates)[0].dtype)
    _, times = jax.lax.scan(body, (params0, zero), rest)
    return jnp.concatenate([zero[None], times])
