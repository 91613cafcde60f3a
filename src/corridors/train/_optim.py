"""The optimizers of `corridors.train`, all optax transforms taking `value=loss`:
optax's sgd (with momentum and Nesterov), adam, adamw and lion beside the corridor
family (CLR, Polyak, SPS_max, Chebyshev and silver schedules).

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
from ._names import ADAPTIVE, LR_OPTIMIZERS, OPTIMIZERS, POLYAK_FAMILY


@dataclasses.dataclass(frozen=True, eq=False)
class Optimizer:
    """An optax transform and how to read the learning rate it uses.

    **Fields:**

    - `name`: one of `OPTIMIZERS`.
    - `tx`: the `optax.GradientTransformationExtraArgs`; call
      `tx.update(grads, state, params, value=loss)`.
    - `uses_lr`: whether the fixed `lr` of a run matters (sgd, momentum, adam,
      adamw, lion).
    - `gd_step`: whether every update is a plain gradient step −h∇L (sgd without
      momentum, the corridor family), so its drift is that of GD at the same h.
    """

    name: str
    tx: optax.GradientTransformationExtraArgs
    uses_lr: bool
    gd_step: bool = True
    _schedule: Callable | None = None

    def init(self, params: Any, lr: float | None) -> Any:
        """The optimizer state, with the run's learning rate set (`uses_lr`)."""
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
    momentum: float | None = None,
    nesterov: bool = False,
    b1: float | None = None,
    b2: float | None = None,
    eps: float | None = None,
    decoupled_weight_decay: float | None = None,
    max_lr: float | None = None,
    f_min: float = 0.0,
    sps_c: float = 0.5,
    spectrum: tuple[float, float] | None = None,
    cycle: int | None = None,
    smoothness: float | None = None,
) -> Optimizer:
    """Build one of the optimizers of `corridors.train`.

    **Arguments:**

    - `name`: "sgd" (with `momentum`, optax's heavy ball), "momentum" (heavy ball,
      optax convention, β = 0.9 by default), "adam", "adamw", "lion" (optax's, with
      the run's learning rate), "clr" (corridor learning rate), "polyak" (Polyak step
      with `f_min`), "sps_max" (Loizou et al., needs `max_lr`), "chebyshev" (needs
      `spectrum` = (m, M) and `cycle` = T) or "silver" (needs `smoothness` = L and
      `cycle` = T).
    - `momentum`: β for "momentum" (default 0.9) and "sgd" (default none).
    - `nesterov`: Nesterov momentum for "sgd" with `momentum` and "momentum".
    - `b1`, `b2`, `eps`: of "adam", "adamw" and "lion" (no `eps`); `None`: optax's
      defaults (adam/adamw 0.9, 0.999, 1e-8; lion 0.9, 0.99).
    - `decoupled_weight_decay`: the decoupled decay of "adamw" and "lion" (`None`:
      optax's 1e-4 and 1e-3); not the L2 term of the loss (`weight_decay` of a run).
    - `max_lr`: cap on the Polyak-type steps (the paper caps ImageNet at 10).
    - `f_min`, `sps_c`: Polyak's target value and SPS_max's constant c.

    **Returns:**

    An `Optimizer`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from corridors.train import make_optimizer

    adam = make_optimizer("adam", b2=0.99)
    params = {"w": jnp.ones(2)}
    state = adam.init(params, 1e-3)
    update, state = adam.tx.update({"w": jnp.array([1.0, -2.0])}, state, params)
    print(update["w"])  # [-0.001  0.001]
    ```
    """
    where = "make_optimizer"
    if name not in OPTIMIZERS:
        raise InvalidInputError(
            f"{where}: unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}."
        )
    allowed = {"b1": ADAPTIVE, "b2": ADAPTIVE, "eps": ("adam", "adamw")}
    given = {key: value for key, value in (("b1", b1), ("b2", b2), ("eps", eps))}
    for key, value in given.items():
        if value is not None and name not in allowed[key]:
            raise InvalidInputError(
                f"{where}: `{key}` applies to {', '.join(allowed[key])}, not {name!r}."
            )
    if decoupled_weight_decay is not None and name not in ("adamw", "lion"):
        raise InvalidInputError(
            f"{where}: `decoupled_weight_decay` applies to adamw and lion, not {name!r}."
        )
    if name == "momentum" and momentum is None:
        momentum = 0.9
    heavy_ball = name in ("sgd", "momentum") and momentum is not None
    if nesterov and not heavy_ball:
        raise InvalidInputError(
            f"{where}: `nesterov` needs momentum (optimizer 'momentum', or 'sgd' with "
            f"`momentum`), got {name!r}."
        )
    if name in LR_OPTIMIZERS:
        static = ()
        if name in ("sgd", "momentum"):
            factory, options = optax.sgd, {"momentum": momentum, "nesterov": nesterov}
            static = ("nesterov",)
        else:
            factory = getattr(optax, name)
            options = {key: value for key, value in given.items() if value is not None}
            if decoupled_weight_decay is not None:
                options["weight_decay"] = decoupled_weight_decay
        inject = optax.inject_hyperparams(
            factory, static_args=static, hyperparam_dtype=jnp.float32
        )
        return Optimizer(
            name,
            inject(learning_rate=1.0, **options),
            uses_lr=True,
            gd_step=name in ("sgd", "momentum") and not heavy_ball,
        )
    inject = optax.inject_hyperparams(optax.sgd, hyperparam_dtype=jnp.float32)
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
