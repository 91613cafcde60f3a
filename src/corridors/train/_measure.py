"""Corridor measurements during training, on a fixed measurement batch.

The measured loss is L(θ) = cross-entropy of the model on the measurement batch with
batch norm in "measure" mode (statistics of that batch, running averages untouched,
float32) plus the run's L2 term: a deterministic function of the parameters and the
exact loss a training step on that batch differentiates. Every quantity below is a
property of this one function:

- `loss`, `grad_norm` = ‖∇L‖;
- `corridor_score` = ‖H∇L‖/‖∇L‖ and `predicted_drift` = (h²/2)‖H∇L‖, from one
  `corridors.hvp`;
- `drift` = ‖(θ − h∇L) − φ(h)‖, one optimizer step of size h against the gradient
  flow φ of L over time h, solved with `corridors.gradient_flow`. The solve runs in
  rescaled coordinates u = (φ − θ)/c, c = h‖∇L‖, τ = t/h (the flow of
  ψ(u) = h·L(θ + c·u)/c² over τ ∈ [0, 1]), so its tolerance is relative to the
  displacement of the step and float32 keeps its digits;
- the SGD regularizer terms of `corridors.sgd_regularizers` with the measurement
  batch split into micro-batches (each with its own batch-norm statistics, as SGD
  batches have);
- `sharpness`, the top Hessian eigenvalue from `corridors.sharpness`.

h is the step the optimizer takes from θ on this batch: the fixed or scheduled
learning rate, or the Polyak-type step computed from this batch's loss and gradient.
For heavy-ball momentum it is the first step from rest, which is plain GD.
"""

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .. import _drift, _flows, _geometry
from .._geometry import tree_norm
from ._config import MeasureOptions
from ._network import Network, l2_penalty, normalize

RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels, in float32."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels
    ).mean()


def make_measure_loss(
    network: Network, mean: Any, std: Any, weight_decay: float
) -> Callable:
    """The measured loss `loss(params, images, labels, batch_stats) -> scalar`.

    Batch norm uses the statistics of `images` (the running averages in
    `batch_stats` are only carried along), in float32.
    """

    def measure_loss(params, images, labels, batch_stats):
        logits, _ = network.apply(
            params, batch_stats, normalize(images, mean, std), mode="measure"
        )
        return cross_entropy(logits, labels) + l2_penalty(params, weight_decay)

    return measure_loss


def rescaled_flow_loss(loss: Callable) -> Callable:
    """ψ(u, θ, c, h, *args) = h·L(θ + c·u, *args)/c², whose gradient flow over
    τ ∈ [0, 1] is (φ(hτ) − θ)/c for the gradient flow φ of L from θ."""

    def psi(u, theta, scale, lr, *args):
        point = optax.tree.add_scale(theta, scale, u)
        return lr * loss(point, *args) / scale**2

    return psi


class Measurer:
    """Jitted measurement functions for one network, loss and optimizer."""

    def __init__(self, loss: Callable, optimizer, options: MeasureOptions):
        self.loss = loss
        self.psi = rescaled_flow_loss(loss)
        self.optimizer = optimizer
        self.options = options
        self._basic = jax.jit(self._basic_impl)
        self._drift = jax.jit(self._drift_impl)
        self._sharpness = jax.jit(self._sharpness_impl)
        self._grad = jax.jit(jax.grad(loss))

    # -- the pieces -------------------------------------------------------------
    def _basic_impl(self, params, batch_stats, opt_state, images, labels):
        args = (images, labels, batch_stats)
        loss, grad = jax.value_and_grad(self.loss)(params, *args)
        hessian_grad = _geometry.hvp(self.loss, params, grad, args)
        grad_norm = tree_norm(grad)
        hg_norm = tree_norm(hessian_grad)
        lr = self.optimizer.next_lr(opt_state, params, loss, grad).astype(loss.dtype)
        out = {
            "loss": loss,
            "grad_norm": grad_norm,
            "lr": lr,
            "corridor_score": _geometry.safe_ratio(hg_norm, grad_norm),
            "predicted_drift": 0.5 * lr**2 * hg_norm,
        }
        m = self.options.microbatches
        if m > 1:
            split = lambda x: x.reshape(m, x.shape[0] // m, *x.shape[1:])  # noqa: E731
            regs = _drift.sgd_regularizers(
                self.loss,
                params,
                (split(images), split(labels)),
                jnp.maximum(lr, jnp.finfo(jnp.float32).tiny),
                (batch_stats,),
            )
            out["sgd_full_batch"] = jnp.where(lr > 0, regs.full_batch, 0.0)
            out["sgd_per_batch"] = jnp.where(lr > 0, regs.per_batch, 0.0)
            out["sgd_per_batch_grad_norm"] = jnp.where(
                lr > 0, tree_norm(regs.per_batch_grad), 0.0
            )
        return out, grad

    def _drift_impl(self, params, batch_stats, images, labels, grad, lr):
        grad_norm = tree_norm(grad)
        scale = lr * grad_norm
        moving = scale > 0
        safe_scale = jnp.where(moving, scale, 1.0)
        safe_lr = jnp.where(moving, lr, 1.0)
        u0 = jax.tree.map(jnp.zeros_like, params)
        n = sum(leaf.size for leaf in jax.tree.leaves(params))
        tol = self.options.flow_tol
        flow = _flows.gradient_flow(
            self.psi,
            u0,
            jnp.asarray([0.0, 1.0], jnp.float32),
            (params, safe_scale, safe_lr, images, labels, batch_stats),
            rtol=tol,
            atol=tol / math.sqrt(n),
            max_steps=self.options.flow_max_steps,
            solver=getattr(diffrax, self.options.flow_solver.title())(),  # FLOW_SOLVERS
        )
        u_flow = jax.tree.map(lambda leaf: leaf[-1], flow.params)
        # The optimizer's step in the same coordinates: −h∇L/c = −∇L/‖∇L‖.
        u_step = jax.tree.map(lambda g: -g / jnp.where(moving, grad_norm, 1.0), grad)
        distance = tree_norm(optax.tree.sub(u_step, u_flow))
        drift = jnp.where(moving, scale * distance, 0.0)
        return {
            "drift": drift,
            "relative_drift": jnp.where(moving, distance, 0.0),
            "flow_steps": flow.stats["num_steps"],
            "flow_evaluations": flow.stats.get(
                "num_evaluations", flow.stats["num_steps"]
            ),
        }

    def _sharpness_impl(self, params, batch_stats, images, labels, key):
        eigenvalues = _geometry.sharpness(
            self.loss,
            params,
            (images, labels, batch_stats),
            k=1,
            key=key,
            tol=self.options.sharpness_tol,
            max_iter=self.options.sharpness_iters,
        )
        return eigenvalues[0]

    # -- public -------------------------------------------------------------------
    def measure(
        self,
        params,
        batch_stats,
        opt_state,
        images,
        labels,
        *,
        sharpness_key=None,
    ) -> dict[str, Any]:
        """All measurements at `params`; a dict of Python floats (None where a
        solve failed, with the reason under `<name>_error`)."""
        with _quiet_callbacks():
            return self._measure(
                params, batch_stats, opt_state, images, labels, sharpness_key
            )

    def _measure(self, params, batch_stats, opt_state, images, labels, sharpness_key):
        basic, grad = self._basic(params, batch_stats, opt_state, images, labels)
        record = {name: float(value) for name, value in basic.items()}
        try:
            drift = self._drift(params, batch_stats, images, labels, grad, basic["lr"])
            record.update(
                drift=float(drift["drift"]),
                relative_drift=float(drift["relative_drift"]),
                flow_steps=int(drift["flow_steps"]),
                flow_evaluations=int(drift["flow_evaluations"]),
            )
        except RUNTIME_ERRORS as error:
            record.update(drift=None, drift_error=_first_line(error))
        if sharpness_key is not None:
            try:
                record["sharpness"] = float(
                    self._sharpness(params, batch_stats, images, labels, sharpness_key)
                )
            except RUNTIME_ERRORS as error:
                record.update(sharpness=None, sharpness_error=_first_line(error))
        return record

    def gradient(self, params, batch_stats, images, labels):
        """∇L at `params` (for the post-hoc RSI/EB)."""
        return self._grad(params, images, labels, batch_stats)


def _first_line(error: BaseException) -> str:
    """The message of the `equinox.error_if` behind `error`, else its first line."""
    text = str(error)
    for marker in ("gradient_flow:", "sharpness:", "measure_drift:"):
        if marker in text:
            return text[text.index(marker) :].splitlines()[0].strip()[:300]
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__


@contextlib.contextmanager
def _quiet_callbacks():
    """Silence JAX's log of a failing callback (the traceback of an
    `equinox.error_if`): a failed solve is reported in the metrics instead."""
    logger = logging.getLogger("jax._src.callback")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
