"""Polyak-type step sizes as optax transforms: CLR, Polyak, SPS_max, Hazan–Kakade.

All four compute h = scale·(value − f_lower)₊ / (‖g‖² + eps), optionally capped, and
return the update −h·g. They share one implementation, `_polyak_step`, and differ only
in how `f_lower` and `scale` are chosen.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PyTree

from .._checks import (
    InvalidInputError,
    check_finite,
    check_nonnegative,
    check_positive,
    float_dtype,
)


class PolyakState(NamedTuple):
    """State of `clr`, `polyak` and `sps_max`.

    **Attributes:**

    - `lr`: the step size h used by the last `update` (0 before the first one), in the
      floating dtype of the parameters. Log it to see the learning rate the method chose.
    """

    lr: Array


class HazanKakadeState(NamedTuple):
    """State of `hazan_kakade`.

    **Attributes:**

    - `lr`: the step size h used by the last `update` (0 before the first one).
    - `f_lower`: the current lower bound f̃_k on the optimal value.
    - `best`: the smallest loss value seen in the current epoch (+inf at its start).
    - `count`: the number of updates so far (int32).
    """

    lr: Array
    f_lower: Array
    best: Array
    count: Array


def _check_scalar(where: str, name: str, value: Any) -> Any:
    """A real scalar option (Python number or 0-d array), refusing NaN/Inf."""
    if jnp.ndim(value) != 0:
        raise InvalidInputError(
            f"{where}: `{name}` must be a scalar, got shape {jnp.shape(value)}."
        )
    return check_finite(where, name, value)


def _checked_max_lr(where: str, max_lr: Any) -> Any:
    if max_lr is None:
        return None
    if jnp.ndim(max_lr) != 0:
        raise InvalidInputError(f"{where}: `max_lr` must be a scalar or None.")
    return check_positive(where, "max_lr", max_lr)


def _polyak_step(
    where: str,
    grads: PyTree,
    value: Any,
    f_lower: Any,
    *,
    scale: Any,
    eps: Any,
    max_lr: Any,
) -> tuple[PyTree, Array]:
    """(−h·grads, h) with h = scale·(value − f_lower)₊/(‖grads‖² + eps), capped.

    h = 0 where ‖grads‖² + eps = 0 (a stationary point) or where the uncapped quotient
    overflows; gradients of the result stay finite there (double-`where`).
    """
    if value is None:
        raise InvalidInputError(
            f"{where}: `update` needs the current loss value; call "
            "`update(grads, state, params, value=loss)` (for example with "
            "`loss, grads = jax.value_and_grad(f)(params)`)."
        )
    if jnp.ndim(value) != 0:
        raise InvalidInputError(
            f"{where}: `value` must be the scalar loss, got shape {jnp.shape(value)}."
        )
    value = check_finite(where, "value", value)
    grads = check_finite(where, "grads", grads)
    squared_norm = optax.tree.norm(grads, squared=True)
    # Same arithmetic as optax.scale_by_polyak, so the two agree bit for bit.
    gap = jnp.maximum(jnp.asarray(value - f_lower).astype(squared_norm.dtype), 0)
    denominator = squared_norm + eps
    positive = denominator > 0
    quotient = scale * gap / jnp.where(positive, denominator, 1)
    if max_lr is not None:
        quotient = jnp.minimum(quotient, max_lr)
    ok = positive & jnp.isfinite(quotient)
    step = jnp.where(ok, quotient, 0)
    updates = jax.tree.map(lambda g: (-step).astype(g.dtype) * g, grads)
    return updates, step


def _polyak_transform(
    where: str, *, f_min: Any, scale: Any, eps: Any, max_lr: Any
) -> optax.GradientTransformationExtraArgs:
    def init_fn(params: PyTree) -> PolyakState:
        return PolyakState(lr=jnp.zeros((), float_dtype(params)))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if not jax.tree.leaves(updates):
            return updates, state
        updates, step = _polyak_step(
            where, updates, value, f_min, scale=scale, eps=eps, max_lr=max_lr
        )
        return updates, PolyakState(lr=step.astype(state.lr.dtype))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def clr(
    *,
    max_lr: float | Array | None = None,
    f_min: float | Array = 0.0,
    eps: float | Array = 0.0,
    scale: float | Array = 1.0,
) -> optax.GradientTransformationExtraArgs:
    """The corridor learning rate (CLR): a Polyak step with f* = 0 (eq. 3).

    In a corridor (H∇L = 0) the gradient flow is the straight line θ0 − t∇L(θ0) and
    the loss falls linearly, L(θ(t)) = L(θ0) − t‖∇L(θ0)‖² (Prop. 2.10), so one GD step
    of size L(θ0)/‖∇L(θ0)‖² lands exactly where L = 0. CLR takes that step everywhere:

    h = scale·(value − f_min)₊ / (‖grads‖² + eps),  capped at `max_lr`,

    and returns the update −h·grads. Edge cases:

    - value < f_min gives h = 0: no step (a Polyak step towards a level below the
      current loss would point uphill).
    - ‖grads‖² + eps = 0 (a stationary point) gives h = 0 and a zero update, never NaN;
      so does an uncapped step too large to represent. Differentiating through the
      update there gives finite gradients (the division is guarded on both sides).
    - A NaN or Inf `value` or gradient is an error (`InvalidInputError`, a `ValueError`, on concrete input,
      `equinox.EquinoxRuntimeError` under `jit`), not a NaN update.

    Relation to optax: `optax.polyak_sgd(max_learning_rate=c, f_min=f, eps=e,
    variant="sps+")` computes the same update as `clr(max_lr=c, f_min=f, eps=e)`,
    bit for bit, whenever ‖g‖² + eps > 2.2e-16 (optax returns 0 below that
    threshold; CLR only at exactly 0). With `variant="sps"` they agree wherever
    value ≥ f_min. optax's `scaling` multiplies the gradients *before* its step is
    computed (so an uncapped step comes out divided by `scaling`); it overlaps with CLR
    only at `scaling=1`. `max_lr=None` here corresponds to `max_learning_rate=inf`.

    **Arguments:**

    - `max_lr`: cap on h (`None`: no cap). The paper caps ImageNet runs at 10.
    - `f_min`: the target loss level (0 for CLR, f* for the classical Polyak step).
    - `eps`: added to ‖grads‖² in the denominator, ≥ 0.
    - `scale`: multiplies h, > 0.

    **Returns:**

    An `optax.GradientTransformationExtraArgs`. Its `update(grads, state, params,
    value=loss)` needs the current loss as the keyword `value`; its state is a
    `PolyakState` whose `lr` is the last h.

    **Example:**

    ```python
    import jax, jax.numpy as jnp, optax
    import corridors as cr

    loss_fn = lambda th: 2.0 * jnp.linalg.norm(th)   # a cone: a corridor with minimum 0
    params = jnp.array([3.0, 4.0])
    optimizer = cr.lr.clr(max_lr=10.0)
    state = optimizer.init(params)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = optimizer.update(grads, state, params, value=loss)
    params = optax.apply_updates(params, updates)
    print(state.lr, params)  # 2.5 [0. 0.]: one step lands on the apex
    ```
    """
    return _polyak_transform(
        "clr",
        f_min=_check_scalar("clr", "f_min", f_min),
        scale=check_positive("clr", "scale", scale),
        eps=check_nonnegative("clr", "eps", eps),
        max_lr=_checked_max_lr("clr", max_lr),
    )


def polyak(
    f_min: float | Array,
    *,
    max_lr: float | Array | None = None,
    eps: float | Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """The classical Polyak step h = (value − f_min)₊ / ‖grads‖² (Polyak 1969/1987).

    With f_min = f* (the optimal value) this is the step that minimizes the upper bound
    ‖θ − h g − θ*‖² ≤ ‖θ − θ*‖² − 2h(f − f*) + h²‖g‖² for convex losses. It is `clr`
    with `f_min` required; see `clr` for the edge cases (value < f_min and zero
    gradients give a zero update).

    **Arguments:**

    - `f_min`: the optimal value f*, or an estimate of it.
    - `max_lr`: cap on h (`None`: no cap).
    - `eps`: added to ‖grads‖², ≥ 0.

    **Returns:**

    An `optax.GradientTransformationExtraArgs` with state `PolyakState`; call
    `update(grads, state, params, value=loss)`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr
    loss_fn = lambda th: jnp.sum(th**2) + 1.0           # f* = 1
    params = jnp.array([1.0, 2.0])
    optimizer = cr.lr.polyak(f_min=1.0)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = optimizer.update(grads, optimizer.init(params), params, value=loss)
    print(state.lr)  # 0.25 = (L − f*)/‖∇L‖² = 5/20
    ```
    """
    return _polyak_transform(
        "polyak",
        f_min=_check_scalar("polyak", "f_min", f_min),
        scale=1.0,
        eps=check_nonnegative("polyak", "eps", eps),
        max_lr=_checked_max_lr("polyak", max_lr),
    )


def sps_max(
    c: float | Array,
    max_lr: float | Array,
    *,
    f_min: float | Array = 0.0,
    eps: float | Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """SPS_max, the capped stochastic Polyak step of Loizou et al. (2021).

    h = min( (f_B(θ) − f_B*)₊ / (c·(‖∇f_B(θ)‖² + eps)), γ_b ),

    with f_B the minibatch loss (passed as `value`), f_B* its minimum (`f_min`, 0 for
    models that interpolate the data), `c` the constant (c = 1/2 in their theory) and
    γ_b = `max_lr`. It is `clr(max_lr=max_lr, f_min=f_min, eps=eps, scale=1/c)`.

    Reference: N. Loizou, S. Vaswani, I. Laradji, S. Lacoste-Julien, "Stochastic Polyak
    step-size for SGD: an adaptive learning rate for fast convergence", AISTATS 2021.

    **Arguments:**

    - `c`: the constant c > 0.
    - `max_lr`: the cap γ_b > 0.
    - `f_min`: the (minibatch) optimal value f_B*.
    - `eps`: added to ‖grads‖², ≥ 0.

    **Returns:**

    An `optax.GradientTransformationExtraArgs` with state `PolyakState`; call
    `update(grads, state, params, value=loss)`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr
    loss_fn = lambda th: jnp.sum(th**2)
    params = jnp.array([1.0, 2.0])
    optimizer = cr.lr.sps_max(c=0.5, max_lr=0.1)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = optimizer.update(grads, optimizer.init(params), params, value=loss)
    print(state.lr)  # 0.1: L/(c‖∇L‖²) = 0.5, capped at max_lr
    ```
    """
    c = check_positive("sps_max", "c", c)
    return _polyak_transform(
        "sps_max",
        f_min=_check_scalar("sps_max", "f_min", f_min),
        scale=1.0 / c,
        eps=check_nonnegative("sps_max", "eps", eps),
        max_lr=_checked_max_lr("sps_max", max_lr),
    )


def hazan_kakade(
    f_lower: float | Array,
    *,
    epoch_length: int = 100,
    max_lr: float | Array | None = None,
    eps: float | Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Adaptive Polyak step of Hazan & Kakade (2019), for an unknown optimal value.

    The Polyak step needs f* = min f. Hazan & Kakade ("Revisiting the Polyak step
    size", arXiv:1905.00313) start from any lower bound f̃_0 ≤ f* and refine it: in
    epoch k they run gradient descent with the Polyak step for the estimate f̃_k,

    η_t = (f(x_t) − f̃_k) / ‖∇f(x_t)‖²,

    for `epoch_length` steps, then halve the gap between the estimate and the best
    value x̄_k reached in that epoch,

    f̃_{k+1} = (f̃_k + f(x̄_k)) / 2.

    The halving is what the analysis allows: with f̃ ≤ f*, the step shrinks
    ‖x − x*‖² unless f(x) − f* < f* − f̃, i.e. unless (f(x) + f̃)/2 < f*, so a stalled
    epoch certifies the midpoint as a new lower bound; either way the method reaches
    the rate of the exact Polyak step with a logarithmic number of extra epochs. The
    step is clipped at 0 when value < f̃_k (`clr`'s convention) and optionally capped.

    **Arguments:**

    - `f_lower`: the initial lower bound f̃_0 on the optimal value.
    - `epoch_length`: steps per epoch (a positive int; the paper's T per restart).
    - `max_lr`: cap on the step (`None`: no cap).
    - `eps`: added to ‖grads‖², ≥ 0.

    **Returns:**

    An `optax.GradientTransformationExtraArgs` with state `HazanKakadeState` (the last
    step, the current f̃_k, the epoch's best value, the step count); call
    `update(grads, state, params, value=loss)`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr
    loss_fn = lambda th: jnp.sum(th**2) + 1.0
    params = jnp.array([1.0, 2.0])
    optimizer = cr.lr.hazan_kakade(f_lower=0.0)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = optimizer.update(grads, optimizer.init(params), params, value=loss)
    print(state.lr)  # 0.3 = (L − f̃)/‖∇L‖² = 6/20 in the first epoch
    ```
    """
    where = "hazan_kakade"
    f_lower = _check_scalar(where, "f_lower", f_lower)
    if (
        isinstance(epoch_length, bool)
        or not isinstance(epoch_length, (int, np.integer))
        or epoch_length < 1
    ):
        raise InvalidInputError(
            f"{where}: `epoch_length` must be a positive int, got {epoch_length!r}."
        )
    epoch_length = int(epoch_length)
    eps = check_nonnegative(where, "eps", eps)
    max_lr = _checked_max_lr(where, max_lr)

    def init_fn(params: PyTree) -> HazanKakadeState:
        dtype = float_dtype(params)
        return HazanKakadeState(
            lr=jnp.zeros((), dtype),
            f_lower=jnp.asarray(f_lower, dtype),
            best=jnp.asarray(jnp.inf, dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if not jax.tree.leaves(updates):
            return updates, state
        updates, step = _polyak_step(
            where, updates, value, state.f_lower, scale=1.0, eps=eps, max_lr=max_lr
        )
        dtype = state.lr.dtype
        best = jnp.minimum(state.best, jnp.asarray(value, dtype))
        count = state.count + 1
        epoch_end = count % epoch_length == 0
        f_next = jnp.where(epoch_end, 0.5 * (state.f_lower + best), state.f_lower)
        best = jnp.where(epoch_end, jnp.asarray(jnp.inf, dtype), best)
        return updates, HazanKakadeState(
            lr=step.astype(dtype), f_lower=f_next, best=best, count=count
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
