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
- `sharpness`, the top Hessian eigenvalue (the Lanczos estimate of
  `corridors.sharpness`, with its convergence as a status).

A solve that fails (the drift's flow hitting `flow_max_steps`, Lanczos not converging)
is recorded as None with the reason under `<name>_error`, from its `RESULTS` status.

h is the step the optimizer takes from θ on this batch: the fixed or scheduled
learning rate, or the Polyak-type step computed from this batch's loss and gradient.
For heavy-ball momentum it is the first step from rest, which is plain GD.
"""

import math
from collections.abc import Callable
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from .. import _drift, _flows, _geometry
from .._geometry import tree_norm
from .._lanczos import lanczos_top
from .._results import RESULTS, failed_if
from ._config import MeasureOptions
from ._network import Network, l2_penalty, normalize


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


def rescaled_step_drift(
    loss: Callable, params, grad, lr, args: tuple, options: MeasureOptions
) -> dict:
    """‖(θ − h∇L) − φ(h)‖ for the gradient flow φ of `loss` from θ = `params`, with
    its status (`throw=False`: a failed solve is a `result`, never an error).

    Solved in rescaled coordinates u = (φ − θ)/c, c = h‖∇L‖, τ = t/h: the flow of
    ψ(u) = h·L(θ + c·u)/c² over τ ∈ [0, 1], whose tolerance is then relative to the
    step's displacement. (`corridors.step_drift` is this solve in the core.)
    """
    grad_norm = tree_norm(grad)
    scale = lr * grad_norm
    moving = scale > 0
    safe_scale = jnp.where(moving, scale, 1.0)
    safe_lr = jnp.where(moving, lr, 1.0)

    def psi(u, theta, scale, lr, *args):
        return lr * loss(optax.tree.add_scale(theta, scale, u), *args) / scale**2

    n = sum(leaf.size for leaf in jax.tree.leaves(params))
    flow = _flows.gradient_flow(
        psi,
        jax.tree.map(jnp.zeros_like, params),
        jnp.asarray([0.0, 1.0], jnp.float32),
        (params, safe_scale, safe_lr, *args),
        rtol=options.flow_tol,
        atol=options.flow_tol / math.sqrt(n),
        max_steps=options.flow_max_steps,
        solver=getattr(diffrax, options.flow_solver.title())(),  # _names.FLOW_SOLVERS
        throw=False,
    )
    u_flow = jax.tree.map(lambda leaf: leaf[-1], flow.params)
    # The optimizer's step in the same coordinates: −h∇L/c = −∇L/‖∇L‖.
    u_step = jax.tree.map(lambda g: -g / jnp.where(moving, grad_norm, 1.0), grad)
    distance = tree_norm(optax.tree.sub(u_step, u_flow))
    return {
        "drift": jnp.where(moving, scale * distance, 0.0),
        "relative_drift": jnp.where(moving, distance, 0.0),
        "flow_steps": flow.stats["num_steps"],
        "flow_evaluations": flow.stats.get("num_evaluations", flow.stats["num_steps"]),
        "result": flow.result,
    }


def top_eigenvalue(loss: Callable, params, args: tuple, key, options: MeasureOptions):
    """(λ_max of the Hessian of `loss` at `params`, the Lanczos status): the estimate
    of `corridors.sharpness` with k = 1, returning non-convergence as
    `RESULTS.not_converged` instead of raising."""
    flat, unravel = ravel_pytree(params)

    def matvec(vector):
        return ravel_pytree(_geometry.hvp(loss, params, unravel(vector), args))[0]

    start_key, restart_key = jax.random.split(key)
    top = lanczos_top(
        matvec,
        jax.random.normal(start_key, flat.shape, flat.dtype),
        k=1,
        tol=options.sharpness_tol,
        max_iter=min(options.sharpness_iters, flat.size),
        min_iter=min(flat.size, 9),  # as corridors.sharpness for k = 1
        key=restart_key,
    )
    return top.eigenvalues[0], failed_if(~top.converged, RESULTS.not_converged)


def failure_message(where: str, result: RESULTS, hints: tuple) -> str | None:
    """None for `RESULTS.successful`, else "`where`: what failed": the text of the
    `(status, text)` pair in `hints` for that status, or the status's message."""
    if result == RESULTS.successful:
        return None
    for item, text in hints:
        if result == item:
            return f"{where}: {text}"
    return f"{where}: {RESULTS[result]}"


class Measurer:
    """Jitted measurement functions for one network, loss and optimizer."""

    def __init__(self, loss: Callable, optimizer, options: MeasureOptions):
        self.loss = loss
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
                jnp.maximum(lr, jnp.finfo(jnp.float32).tiny),
                (split(images), split(labels)),
                (batch_stats,),
            )
            out["sgd_full_batch"] = jnp.where(lr > 0, regs.full_batch, 0.0)
            out["sgd_per_batch"] = jnp.where(lr > 0, regs.per_batch, 0.0)
            out["sgd_per_batch_grad_norm"] = jnp.where(
                lr > 0, tree_norm(regs.per_batch_grad), 0.0
            )
        return out, grad

    def _drift_impl(self, params, batch_stats, images, labels, grad, lr):
        args = (images, labels, batch_stats)
        return rescaled_step_drift(self.loss, params, grad, lr, args, self.options)

    def _sharpness_impl(self, params, batch_stats, images, labels, key):
        args = (images, labels, batch_stats)
        return top_eigenvalue(self.loss, params, args, key, self.options)

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
        basic, grad = self._basic(params, batch_stats, opt_state, images, labels)
        record = {name: float(value) for name, value in basic.items()}
        drift = self._drift(params, batch_stats, images, labels, grad, basic["lr"])
        error = failure_message(
            "gradient_flow",
            drift.pop("result"),
            (
                (
                    RESULTS.max_steps_reached,
                    f"the ODE solver hit max_steps={self.options.flow_max_steps} "
                    "before the step's flow time; raise flow_max_steps or loosen "
                    "flow_tol.",
                ),
            ),
        )
        record.update(
            flow_steps=int(drift["flow_steps"]),
            flow_evaluations=int(drift["flow_evaluations"]),
        )
        if error is None:
            record.update(
                drift=float(drift["drift"]),
                relative_drift=float(drift["relative_drift"]),
            )
        else:
            record.update(drift=None, drift_error=error)
        if sharpness_key is not None:
            value, result = self._sharpness(
                params, batch_stats, images, labels, sharpness_key
            )
            error = failure_message(
                "sharpness",
                result,
                (
                    (
                        RESULTS.not_converged,
                        f"Lanczos did not reach tol={self.options.sharpness_tol} "
                        f"within {self.options.sharpness_iters} iterations; raise "
                        "sharpness_iters or sharpness_tol.",
                    ),
                ),
            )
            if error is None:
                record["sharpness"] = float(value)
            else:
                record.update(sharpness=None, sharpness_error=error)
        return record

    def gradient(self, params, batch_stats, images, labels):
        """∇L at `params` (for the post-hoc RSI/EB)."""
        return self._grad(params, images, labels, batch_stats)
