"""Demo part 2: a small tanh network on digits.

1. Full-batch GD against the gradient flow along training (`measure_drift`), with the
   corridor score ‖H∇L‖/‖∇L‖ and the predicted one-step drift (h²/2)‖H∇L‖ at
   checkpoints.
2. Drift at a fixed flow time for several learning rates from one shared flow solve
   (`sweep_drift`).
3. CLR (h = L/‖∇L‖², capped) against a sweep of fixed learning rates, minibatch SGD.

The data, the tanh MLP and the minibatch loop are `corridors.train`'s
(`load_features`, `mlp_loss`, `fit_minibatches`); the optimizers are optax and
`corridors.lr`. Each jitted function below is defined once at module level and
compiles once.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import corridors as cr
from corridors.train import (
    Features,
    fit_minibatches,
    init_mlp,
    mlp_accuracy,
    mlp_loss,
)

from ._options import refuse_failure
from ._report import downsample


@dataclasses.dataclass(frozen=True)
class Settings:
    hidden: int
    n_train: int
    n_test: int
    train_steps: int
    lr: float
    checkpoints: int
    sweep_lrs: tuple[float, ...]
    horizon: float
    sgd_steps: int
    batch_size: int
    fixed_lrs: tuple[float, ...]
    max_lr: float


FULL = Settings(
    hidden=32,
    n_train=1200,
    n_test=297,  # the digits test split
    train_steps=300,
    lr=0.5,
    checkpoints=21,
    sweep_lrs=tuple(np.geomspace(0.025, 0.4, 7).tolist()),
    horizon=8.0,
    sgd_steps=400,
    batch_size=64,
    fixed_lrs=(0.03, 0.1, 0.3, 1.0, 3.0),
    max_lr=10.0,
)
FAST = Settings(
    hidden=16,
    n_train=300,
    n_test=200,
    train_steps=40,
    lr=0.5,
    checkpoints=6,
    sweep_lrs=(0.05, 0.1, 0.2, 0.4),
    horizon=1.6,
    sgd_steps=60,
    batch_size=32,
    fixed_lrs=(0.1, 1.0),
    max_lr=10.0,
)


@eqx.filter_jit
def _along_path(params_stack, lr, x, y):
    """Corridor score, predicted one-step drift and gradient norm at stacked params."""

    def measure(params):
        args = (x, y)
        grad = jax.grad(mlp_loss)(params, *args)
        return (
            cr.corridor_score(mlp_loss, params, args),
            cr.predicted_step_drift(mlp_loss, params, lr, args),
            optax.tree.norm(grad),
        )

    return jax.lax.map(measure, params_stack)


def _train(optimizer, params, x, y, batches, x_test, y_test):
    params, losses, lrs = fit_minibatches(optimizer, params, x, y, batches)
    return losses, lrs, mlp_accuracy(params, x_test, y_test)


@eqx.filter_jit
def _clr_run(params, x, y, batches, x_test, y_test, max_lr):
    return _train(cr.lr.clr(max_lr=max_lr), params, x, y, batches, x_test, y_test)


@eqx.filter_jit
def _fixed_runs(params, x, y, batches, x_test, y_test, lrs):
    def one(lr):
        optimizer = optax.with_extra_args_support(optax.sgd(lr))
        losses, _, acc = _train(optimizer, params, x, y, batches, x_test, y_test)
        return losses, acc

    return jax.vmap(one)(lrs)


def _diverged(losses: np.ndarray) -> int | None:
    """The first step whose loss is NaN/Inf or 10× the initial loss, else None."""
    bad = np.flatnonzero(~np.isfinite(losses) | (losses > 10 * losses[0]))
    return int(bad[0]) if bad.size else None


STAGES = 5
"""Calls to `stage` made by `run`."""


def run(stage: Callable[[str], None], data: Features, settings: Settings, seed: int):
    """All three experiments; returns a JSON-able dict."""
    key_params, key_batches = jax.random.split(jax.random.key(seed))
    sizes = (data.n_features, settings.hidden, data.n_classes)
    params0 = init_mlp(key_params, sizes)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    args = (x, y)

    stage("network: GD vs gradient flow along training")
    lr, n = settings.lr, settings.train_steps
    drift = cr.measure_drift(mlp_loss, params0, lr, n, args, throw=False)
    refuse_failure(drift.result, f"GD at lr {lr:g} ({n} steps)")
    keep = downsample(n + 1, 300)

    stage("network: corridor score along training")
    at = np.unique(np.linspace(0, n, settings.checkpoints).round().astype(int))
    stack = jax.tree.map(lambda leaf: leaf[at], drift.iterates)
    scores, predicted, grad_norms = _along_path(stack, jnp.asarray(lr), x, y)
    training = {
        "lr": lr,
        "n_steps": n,
        "step": keep,
        "flow_time": np.asarray(drift.ts)[keep],
        "drift": np.asarray(drift.distance)[keep],
        "relative_drift": np.asarray(drift.relative)[keep],
        "loss_gd": np.asarray(drift.loss_method)[keep],
        "loss_flow": np.asarray(drift.loss_reference)[keep],
        "checkpoint_step": at,
        "corridor_score": scores,
        "predicted_step_drift": predicted,
        "grad_norm": grad_norms,
    }

    stage("network: drift vs lr (one shared flow solve)")
    sweep = cr.sweep_drift(
        mlp_loss,
        params0,
        settings.sweep_lrs,
        settings.horizon,
        args,
        batch_size=4,
        throw=False,
    )
    refuse_failure(sweep.result, "the drift sweep")
    distances = np.asarray(sweep)
    sweep_result = {
        "horizon": settings.horizon,
        "lrs": list(settings.sweep_lrs),
        "n_steps": np.asarray(sweep.n_steps),
        "drift": distances,
        "slope": float(cr.drift_order(settings.sweep_lrs, distances).order),
        "theory": 1,
    }

    stage("network: CLR (minibatch SGD)")
    n_train = data.x_train.shape[0]
    batches = jax.random.randint(
        key_batches, (settings.sgd_steps, settings.batch_size), 0, n_train
    )
    clr_losses, clr_lrs, clr_acc = _clr_run(
        params0, x, y, batches, x_test, y_test, settings.max_lr
    )
    runs = [
        {
            "name": f"CLR (max_lr={settings.max_lr:g})",
            "optimizer": "clr",
            "lr": None,
            "loss": np.asarray(clr_losses),
            "lr_trace": np.asarray(clr_lrs),
            "test_accuracy": float(clr_acc),
            "diverged_at": _diverged(np.asarray(clr_losses)),
        }
    ]

    stage("network: fixed-lr SGD sweep")
    fixed_losses, fixed_acc = _fixed_runs(
        params0, x, y, batches, x_test, y_test, jnp.asarray(settings.fixed_lrs)
    )
    for fixed_lr, losses, acc in zip(
        settings.fixed_lrs, np.asarray(fixed_losses), np.asarray(fixed_acc), strict=True
    ):
        runs.append(
            {
                "name": f"SGD lr={fixed_lr:g}",
                "optimizer": "sgd",
                "lr": fixed_lr,
                "loss": losses,
                "test_accuracy": float(acc),
                "diverged_at": _diverged(losses),
            }
        )
    return {
        "data": {
            "name": data.name,
            "description": data.description,
            "n_train": int(data.x_train.shape[0]),
            "n_test": int(data.x_test.shape[0]),
        },
        "model": {
            "layers": sizes,
            "activation": "tanh",
            "loss": "softmax cross-entropy",
            "parameters": sum(leaf.size for leaf in jax.tree.leaves(params0)),
        },
        "training": training,
        "sweep": sweep_result,
        "clr": {
            "steps": settings.sgd_steps,
            "batch_size": settings.batch_size,
            "max_lr": settings.max_lr,
            "runs": runs,
        },
    }
