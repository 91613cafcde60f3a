"""The optimizers of `corridors.train`, all optax transforms taking `value=loss`.

Fixed learning rates live in the optimizer state (`optax.inject_hyperparams`), so one
compiled training step serves every learning rate of a sweep.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .. import lr as cr_lr
from .._checks import InvalidInputError
from ._names import OPTIMIZERS, POLYAK_FAMILY


@dataclasses.dataclass(frozen=True, eq=False)
class Optimizer:
    """An optax transform and how to read the learning rate it uses.

    **Fields:**

    - `name`: one of `OPTIMIZERS`.
    - `tx`: the `optax.GradientTransformationExtraArgs`; call
      `tx.update(grads, state, params, value=loss)`.
    - `uses_lr`: whether the fixed `lr` of a run matters (sgd, momentum).
    """

    name: str
    tx: optax.GradientTransformationExtraArgs
    uses_lr: bool
    _schedule: Callable | None = None

    def init(self, params: Any, lr: float | None) -> Any:
        """The optimizer state, with the run's learning rate set (sgd, momentum)."""
        state = self.tx.init(params)
        if self.uses_lr:
            hyperparams = dict(state.hyperparams)
            hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
            state = state._replace(hyperparams=hyperparams)
        return state

    def lr_used(self, state: Any) -> jax.Array:
        """The step size of the last update (0 before the first one for Polyak)."""
        if self.name in POLYAK_FAMILY:
            return state.lr.astype(jnp.float32)
        return jnp.asarray(state.hyperparams["learning_rate"], jnp.float32)

    def next_lr(
        self, state: Any, params: Any, loss: jax.Array, grads: Any
    ) -> jax.Array:
        """The step size this optimizer takes from `params` on a batch with this loss
        and gradient: the Polyak-type rule evaluated on them, the scheduled value, or
        the fixed learning rate."""
        if self.name in POLYAK_FAMILY:
            _, fresh = self.tx.update(grads, self.tx.init(params), params, value=loss)
            return fresh.lr.astype(jnp.float32)
        if self._schedule is not None:
            count = state.hyperparams_states["learning_rate"].count
            return jnp.asarray(self._schedule(count), jnp.float32)
        return jnp.asarray(state.hyperparams["learning_rate"], jnp.float32)


def make_optimizer(
    name: str,
    *,
    momentum: float = 0.9,
    max_lr: float | None = None,
    f_min: float = 0.0,
    sps_c: float = 0.5,
    spectrum: tuple[float, float] | None = None,
    cycle: int | None = None,
    smoothness: float | None = None,
) -> Optimizer:
    """Build one of the optimizers of `corridors.train`.

    **Arguments:**

    - `name`: "sgd", "momentum" (heavy ball, optax convention), "clr" (corridor
      learning rate), "polyak" (Polyak step with `f_min`), "sps_max" (Loizou et al.,
      needs `max_lr`), "chebyshev" (needs `spectrum` = (m, M) and `cycle` = T) or
      "silver" (needs `smoothness` = L and `cycle` = T).
    - `momentum`: β for "momentum".
    - `max_lr`: cap on the Polyak-type steps (the paper caps ImageNet at 10).
    - `f_min`, `sps_c`: Polyak's target value and SPS_max's constant c.

    **Returns:**

    An `Optimizer`.
    """
    if name not in OPTIMIZERS:
        raise InvalidInputError(
            f"make_optimizer: unknown optimizer {name!r}; choose one of "
            f"{list(OPTIMIZERS)}."
        )
    inject = optax.inject_hyperparams(optax.sgd, hyperparam_dtype=jnp.float32)
    if name == "sgd":
        return Optimizer(name, inject(learning_rate=1.0), uses_lr=True)
    if name == "momentum":
        return Optimizer(
            name, inject(learning_rate=1.0, momentum=momentum), uses_lr=True
        )
    if name == "clr":
        return Optimizer(name, cr_lr.clr(max_lr=max_lr), uses_lr=False)
    if name == "polyak":
        return Optimizer(name, cr_lr.polyak(f_min, max_lr=max_lr), uses_lr=False)
    if name == "sps_max":
        if max_lr is None:
            raise InvalidInputError(
                "make_optimizer: 'sps_max' needs `max_lr` (its cap γ_b)."
            )
        return Optimizer(name, cr_lr.sps_max(sps_c, max_lr), uses_lr=False)
    if cycle is None:
        raise InvalidInputError(
            f"make_optimizer: {name!r} needs `cycle` (the schedule length T)."
        )
    if name == "chebyshev":
        if spectrum is None:
            raise InvalidInputError(
                "make_optimizer: 'chebyshev' needs `spectrum` = (m, M), bounds of the "
                "Hessian spectrum."
            )
        schedule = cr_lr.chebyshev_schedule(spectrum[0], spectrum[1], cycle)
    else:
        if smoothness is None:
            raise InvalidInputError(
                "make_optimizer: 'silver' needs `smoothness` (L, the largest Hessian "
                "eigenvalue)."
            )
        schedule = cr_lr.silver_schedule(cycle, smoothness)
    return Optimizer(
        name, inject(learning_rate=schedule), uses_lr=False, _schedule=schedule
    )
