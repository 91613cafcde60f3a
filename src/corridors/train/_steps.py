"""The training state, and the compiled training and evaluation steps."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ._measure import cross_entropy
from ._network import Network, l2_penalty, normalize
from ._optim import Optimizer


@struct.dataclass
class TrainState:
    """Everything a training step changes: one pytree, what orbax checkpoints.

    **Fields:**

    - `step` (int32): updates done; the data iterator's position (batch k is a pure
      function of k, see `_pipeline`), saved with the checkpoint as grain's state.
    - `params`, `batch_stats`, `opt_state`;
    - `rng` (uint32[2]): the run's PRNG key (sharpness start vectors fold in the step);
    - `loss_sum`, `loss_count`: the training losses of the current logging window;
    - `lr`: the step size of the last update;
    - `first_nonfinite` (int32): the step whose training loss or gradient was first
      non-finite, −1 while all are finite. Such a step leaves parameters, statistics
      and optimizer state unchanged, so the state stays the last good one.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    loss_sum: jax.Array
    loss_count: jax.Array
    lr: jax.Array
    first_nonfinite: jax.Array

    @classmethod
    def create(
        cls, network: Network, optimizer: Optimizer, seed: int, lr
    ) -> "TrainState":
        """The state at step 0 for `seed` (host arrays; replicate them)."""
        params, batch_stats = network.init(seed)
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=batch_stats,
            opt_state=optimizer.init(params, lr),
            rng=jax.random.PRNGKey(seed),
            loss_sum=jnp.zeros((), jnp.float32),
            loss_count=jnp.zeros((), jnp.int32),
            lr=jnp.zeros((), jnp.float32),
            first_nonfinite=jnp.full((), -1, jnp.int32),
        )

    def window_loss(self) -> float | None:
        """Mean training loss of the logging window (None if it is empty)."""
        count = int(self.loss_count)
        return float(self.loss_sum) / count if count else None


def _select(flag, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def make_train_step(
    network: Network,
    optimizer: Optimizer,
    *,
    mean: Any,
    std: Any,
    weight_decay: float,
):
    """`step(state, images, labels) -> state`: one optimizer update on a batch."""

    def step(state: TrainState, images: jax.Array, labels: jax.Array) -> TrainState:
        def objective(params):
            logits, stats = network.apply(
                params,
                state.batch_stats,
                normalize(images, mean, std),
                mode="train",
            )
            loss = cross_entropy(logits, labels) + l2_penalty(params, weight_decay)
            return loss, stats

        (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
        # A non-finite loss is reported, never applied (and never handed to a
        # Polyak-type step, which would refuse it).
        updates, opt_state = optimizer.tx.update(
            _select(finite, grads, jax.tree.map(jnp.zeros_like, grads)),
            state.opt_state,
            state.params,
            value=jnp.where(finite, loss, 0.0),
        )
        params = optax.apply_updates(state.params, updates)
        first = jnp.where(
            (state.first_nonfinite < 0) & ~finite, state.step, state.first_nonfinite
        )
        return state.replace(
            step=state.step + 1,
            params=_select(finite, params, state.params),
            batch_stats=_select(finite, stats, state.batch_stats),
            opt_state=_select(finite, opt_state, state.opt_state),
            loss_sum=state.loss_sum + jnp.where(finite, loss, 0.0),
            loss_count=state.loss_count + finite.astype(jnp.int32),
            lr=optimizer.lr_used(opt_state),
            first_nonfinite=first,
        )

    return step


def make_eval_step(network: Network, *, mean: Any, std: Any):
    """`evaluate(params, batch_stats, images, labels, weight) -> (correct, loss, n)`,
    weighted sums over the batch, batch norm on its running averages."""

    def evaluate(params, batch_stats, images, labels, weight):
        logits, _ = network.apply(
            params, batch_stats, normalize(images, mean, std), mode="eval"
        )
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
        return (
            jnp.sum(correct * weight),
            jnp.sum(losses * weight),
            jnp.sum(weight),
        )

    return evaluate
