"""Corridor measurements during training, on a fixed measurement batch.

The measured loss is L(θ) = cross-entropy of the model on the measurement batch with
batch norm in "measure" mode (statistics of that batch, running averages untouched,
float32) plus the run's L2 term: a deterministic function of the parameters and the
exact loss a training step on that batch differentiates. Every quantity below is a
property of this one function:

- `loss`, `grad_norm` = ‖∇L‖;
- `corridor_score` = ‖H∇L‖/‖∇L‖ and `predicted_drift` = (h²/2)‖H∇L‖, from one
  `corridors.hvp`;
- `drift` = ‖(θ + u) − φ(t)‖, `corridors.step_drift` of the update u the optimizer
  takes from θ on this batch (with its state: momentum, Adam's moments, the
  schedule's position) against the gradient flow φ of L, at the step's own flow
  time t = ⟨u, −∇L⟩/‖∇L‖² (`drift_time`; h for a GD step); `relative_drift` is
  drift/‖u‖. `gd_drift` is the same for a plain GD step −h∇L at t = h (equal to
  `drift` for the optimizers whose step is one: sgd, the corridor family). The
  solves run in rescaled coordinates, so their tolerance is relative to the step's
  displacement and float32 keeps its digits;
- the SGD regularizer terms of `corridors.sgd_regularizers` with the measurement
  batch split into micro-batches (each with its own batch-norm statistics, as SGD
  batches have);
- `sharpness`, the top Hessian eigenvalue (the Lanczos estimate of
  `corridors.sharpness`, with its convergence as a status);
- with a spectrum due: `hessian_trace` and `hessian_trace_stderr` (Hutch++ of
  `corridors.hessian_trace`) and `block_sharpness`, the top eigenvalue of each
  parameter array's diagonal Hessian block (`corridors.block_sharpness`), keyed by
  the array's path ("conv1/kernel"; None for a block whose Lanczos did not converge).

A solve that fails (the drift's flow hitting `flow_max_steps`, Lanczos not converging)
is recorded as None with the reason under `<name>_error`, from its `RESULTS` status.

h (`lr`) is the step size the optimizer uses from θ on this batch: the fixed or
scheduled learning rate, or the Polyak-type step computed from this batch's loss
and gradient. For a plain optax transform it is the `lr` given to `Measurer`, else
the update's own flow time.
"""

from collections.abc import Callable
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import optax

from .. import _drift, _geometry, _spectrum
from .._geometry import tree_norm
from .._results import RESULTS
from .._step_drift import step_drift
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

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import corridors.train as ct
    network = ct.make_network("mlp", num_classes=3, image_shape=(4, 4, 1), width=8)
    shapes = jax.eval_shape(network.init, 0)  # zero parameters: equal logits
    params, batch_stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    loss = ct.make_measure_loss(network, (0.5,), (0.25,), weight_decay=0.0)
    images, labels = jnp.zeros((2, 4, 4, 1), jnp.uint8), jnp.array([0, 2])
    print(jax.jit(loss)(params, images, labels, batch_stats))  # ≈ 1.0986 = log 3
    ```
    """

    def measure_loss(params, images, labels, batch_stats):
        logits, _ = network.apply(
            params, batch_stats, normalize(images, mean, std), mode="measure"
        )
        return cross_entropy(logits, labels) + l2_penalty(params, weight_decay)

    return measure_loss


def optimizer_step_drift(
    loss: Callable,
    params,
    grad,
    update,
    lr,
    args: tuple,
    options: MeasureOptions,
    *,
    gd_step: bool,
) -> dict:
    """`corridors.step_drift` of the optimizer's `update` and of the GD step −h∇L
    (h = `lr`, at flow time h) from θ = `params`, with their statuses (`throw=False`:
    a failed solve is a `result`, never an error). With `gd_step` the update is
    that GD step, solved once."""
    solve = dict(
        rtol=options.flow_tol,
        # The tolerance is relative to the step's displacement, as flow_tol says.
        atol=float(jnp.finfo(jnp.float32).tiny),
        solver=getattr(diffrax, options.flow_solver.title())(),  # _names.FLOW_SOLVERS
        max_steps=options.flow_max_steps,
        throw=False,
    )
    finite = jnp.isfinite(tree_norm(update))
    update = jax.tree.map(lambda u: jnp.where(finite, u, 0.0), update)
    taken = step_drift(loss, params, update, None, args, **solve)
    result = RESULTS.where(finite, taken.result, RESULTS.nonfinite_loss)
    out = {
        "drift": taken.drift,
        "relative_drift": taken.relative,
        "drift_time": taken.time,
        "flow_steps": taken.stats["num_steps"],
        "flow_evaluations": taken.stats["num_evaluations"],
        "result": result,
        "gd_drift": taken.drift,
        "gd_result": result,
    }
    if not gd_step:
        gd = step_drift(
            loss, params, optax.tree.scale(-lr, grad), lr.astype(taken.drift.dtype),
            args, **solve,
        )  # fmt: skip
        out.update(gd_drift=gd.drift, gd_result=gd.result)
        out["flow_steps"] += gd.stats["num_steps"]
        out["flow_evaluations"] += gd.stats["num_evaluations"]
    return out


def top_eigenvalue(loss: Callable, params, args: tuple, key, options: MeasureOptions):
    """(λ_max of the Hessian of `loss` at `params`, the solver status): the estimate
    of `corridors.sharpness` with k = 1, non-convergence returned as
    `RESULTS.not_converged` instead of raised."""
    n = sum(leaf.size for leaf in jax.tree.leaves(params))
    top = _geometry.sharpness(
        loss,
        params,
        args,
        key=key,
        tol=options.sharpness_tol,
        max_iter=min(options.sharpness_iters, n),
        throw=False,
    )
    return top.eigenvalues[0], top.result


def block_names(params) -> list[str]:
    """The path of each array of `params`, "/"-joined ("conv1/kernel"), in the order
    of `jax.tree.leaves(params)`."""

    def name(path) -> str:
        parts = []
        for entry in path:
            part = getattr(
                entry, "key", getattr(entry, "idx", getattr(entry, "name", None))
            )
            parts.append(str(entry) if part is None else str(part))
        return "/".join(parts)

    return [name(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def spectrum(loss: Callable, params, args: tuple, key, options: MeasureOptions):
    """(Hutch++ trace estimate, its standard error, per-block top eigenvalues, whether
    each converged) of the Hessian of `loss` at `params`; never raises."""
    trace_key, block_key = jax.random.split(key)
    trace = _spectrum.trace_estimate(
        loss, params, args, trace_key, n_samples=options.trace_samples,
        method="hutch++",
    )  # fmt: skip
    plans = _spectrum.block_plans(
        "spectrum", params, None, tol=options.sharpness_tol, which="largest",
        max_iter=options.sharpness_iters,
    )  # fmt: skip
    values, converged = _spectrum.block_eigenvalues(
        loss, params, args, block_key, is_leaf=None, plans=plans
    )
    return trace.trace, trace.stderr, values, converged


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
    """Jitted measurement functions for one network, loss and optimizer.

    **Arguments:**

    - `loss`: `loss(params, images, labels, batch_stats) -> scalar`.
    - `optimizer`: an `Optimizer` of `make_optimizer`, or any optax transform (its
      `update` gets `value=loss` where it takes extra arguments).
    - `options`: the `MeasureOptions`.
    - `lr`: for a plain optax transform, the step size h of the GD comparison
      (`None`: the update's own flow time); an `Optimizer` reads its own.
    """

    def __init__(self, loss: Callable, optimizer, options: MeasureOptions, *, lr=None):
        self.loss = loss
        self.optimizer = optimizer
        self.options = options
        self.lr = lr
        tx = getattr(optimizer, "tx", optimizer)
        self._tx = optax.with_extra_args_support(tx)
        self._gd_step = getattr(optimizer, "gd_step", False)
        self._basic = jax.jit(self._basic_impl)
        self._drift = jax.jit(self._drift_impl)
        self._sharpness = jax.jit(self._sharpness_impl)
        self._spectrum = jax.jit(self._spectrum_impl)
        self._grad = jax.jit(jax.grad(loss))

    # -- the pieces -------------------------------------------------------------
    def _basic_impl(self, params, batch_stats, opt_state, images, labels):
        args = (images, labels, batch_stats)
        loss, grad = jax.value_and_grad(self.loss)(params, *args)
        hessian_grad = _geometry.hvp(self.loss, params, grad, args)
        grad_norm = tree_norm(grad)
        hg_norm = tree_norm(hessian_grad)
        # The step the optimizer takes from here (its state is not advanced).
        update, _ = self._tx.update(grad, opt_state, params, value=loss)
        if hasattr(self.optimizer, "next_lr"):
            lr = self.optimizer.next_lr(opt_state, params, loss, grad)
        elif self.lr is not None:
            lr = jnp.asarray(self.lr, jnp.float32)
        else:
            lr = _geometry.safe_ratio(
                -optax.tree.vdot(update, grad), grad_norm**2
            ).clip(0.0)
        lr = lr.astype(loss.dtype)
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
        return out, grad, update

    def _drift_impl(self, params, batch_stats, images, labels, grad, update, lr):
        args = (images, labels, batch_stats)
        return optimizer_step_drift(
            self.loss, params, grad, update, lr, args, self.options,
            gd_step=self._gd_step,
        )  # fmt: skip

    def _sharpness_impl(self, params, batch_stats, images, labels, key):
        args = (images, labels, batch_stats)
        return top_eigenvalue(self.loss, params, args, key, self.options)

    def _spectrum_impl(self, params, batch_stats, images, labels, key):
        args = (images, labels, batch_stats)
        return spectrum(self.loss, params, args, key, self.options)

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
        spectrum_key=None,
    ) -> dict[str, Any]:
        """All measurements at `params`; a dict of Python floats (None where a
        solve failed, with the reason under `<name>_error`)."""
        basic, grad, update = self._basic(
            params, batch_stats, opt_state, images, labels
        )
        record = {name: float(value) for name, value in basic.items()}
        drift = self._drift(
            params, batch_stats, images, labels, grad, update, basic["lr"]
        )
        hints = (
            (
                RESULTS.max_steps_reached,
                f"the ODE solver hit max_steps={self.options.flow_max_steps} "
                "before the step's flow time; raise flow_max_steps or loosen "
                "flow_tol.",
            ),
        )
        record.update(
            flow_steps=int(drift["flow_steps"]),
            flow_evaluations=int(drift["flow_evaluations"]),
        )
        error = failure_message("step_drift", drift["result"], hints)
        if error is None:
            record.update(
                drift=float(drift["drift"]),
                relative_drift=float(drift["relative_drift"]),
                drift_time=float(drift["drift_time"]),
            )
        else:
            record.update(drift=None, drift_error=error)
        error = failure_message("step_drift", drift["gd_result"], hints)
        if error is None:
            record["gd_drift"] = float(drift["gd_drift"])
        else:
            record.update(gd_drift=None, gd_drift_error=error)
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
        if spectrum_key is not None:
            trace, stderr, values, converged = self._spectrum(
                params, batch_stats, images, labels, spectrum_key
            )
            record.update(
                hessian_trace=float(trace), hessian_trace_stderr=float(stderr)
            )
            names = block_names(params)
            record["block_sharpness"] = {
                name: float(value) if bool(ok) else None
                for name, value, ok in zip(names, values, converged, strict=True)
            }
            failed = [name for name, ok in zip(names, converged, strict=True) if not ok]
            if failed:
                record["block_sharpness_error"] = (
                    f"block_sharpness: Lanczos did not reach tol="
                    f"{self.options.sharpness_tol} within "
                    f"{self.options.sharpness_iters} iterations on {', '.join(failed)}; "
                    "raise sharpness_iters or sharpness_tol."
                )
        return record

    def gradient(self, params, batch_stats, images, labels):
        """∇L at `params` (for the post-hoc RSI/EB)."""
        return self._grad(params, images, labels, batch_stats)
