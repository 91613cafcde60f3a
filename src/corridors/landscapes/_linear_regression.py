"""Least squares on a finite data set, with SGD's and its SME's exact moments."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from .._checks import (
    InvalidInputError,
    check_lr,
    check_nonnegative,
    check_steps,
)
from ._base import AbstractExactLandscape, Minimum, common_dtype, constant
from ._quadratic import Quadratic


class LinearRegression(AbstractExactLandscape):
    """Least squares L(θ) = (1/2N)‖Xθ − y‖² = (1/N)Σᵢ ½(xᵢᵀθ − yᵢ)².

    A quadratic ½θᵀAθ − bᵀθ + c with A = XᵀX/N, b = Xᵀy/N, c = ‖y‖²/2N whose
    per-example gradients gᵢ = xᵢ(xᵢᵀθ − yᵢ) are affine in θ. Their covariance
    Σ(θ) = (1/N)Σᵢ gᵢgᵢᵀ − ḡḡᵀ is quadratic in θ, so the first and second moments of
    SGD and of its stochastic modified equation (SME) obey closed linear recursions
    and ODEs: `sgd_moments` and `sme_moments` give them exactly, and the weak error
    of the SME is computed with no Monte Carlo noise.

    The batch gradient's covariance is c·Σ with c = 1/B when SGD draws its B examples
    with replacement and c = (N − B)/(B(N − 1)) without (B distinct examples per step,
    independently from step to step), as in [`corridors.sgd_paths`][].

    **Fields:** `features` X (N, d), `targets` y (N,), `params0` (d,) (the start of
    SGD and the SME in the moment methods), and the quadratic's `A`, `b`, `c`.
    **Minimum:** the minimum-norm least-squares solution X⁺y.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    model = cr.landscapes.LinearRegression(jnp.eye(2), jnp.array([1.0, -1.0]))
    mean, second = model.sgd_moments(10, 0.5, 1)
    print(mean)  # [ 0.9436865 -0.9436865]: GD's iterate (1 − 0.75¹⁰)·y
    ```
    """

    features: Float[Array, "n d"]
    targets: Float[Array, " n"]
    params0: Float[Array, " d"]
    A: Float[Array, "d d"]
    b: Float[Array, " d"]
    c: Scalar
    quadratic: Quadratic

    def __init__(self, features: Any, targets: Any, *, params0: Any = None):
        """**Arguments:**

        - `features`: the (N, d) matrix X, one example per row.
        - `targets`: the N targets y.
        - `params0`: the starting point of `sgd_moments` and `sme_moments` (default 0).
        """
        owner = "LinearRegression"
        x = constant(owner, "features", features, ndim=2)
        y = constant(owner, "targets", targets, ndim=1)
        n, d = x.shape
        if n < 1 or d < 1 or y.shape != (n,):
            raise InvalidInputError(
                f"{owner}: `targets` must have shape (N,) = ({n},) to match `features` "
                f"{x.shape}, got {y.shape}."
            )
        start = (
            jnp.zeros(d, x.dtype)
            if params0 is None
            else constant(owner, "params0", params0)
        )
        if start.shape != (d,):
            raise InvalidInputError(
                f"{owner}: `params0` must have shape ({d},), got {start.shape}."
            )
        dtype = common_dtype(x, y) if params0 is None else common_dtype(x, y, start)
        self.features, self.targets = x.astype(dtype), y.astype(dtype)
        self.params0 = start.astype(dtype)
        self.A = self.features.T @ self.features / n
        self.b = self.features.T @ self.targets / n
        self.c = 0.5 * jnp.mean(self.targets**2)
        self.quadratic = Quadratic(self.A, -self.b, self.c)

    def _template(self):
        return self.params0

    def _flow_at(self, params0, t):
        return self.quadratic._flow_at(params0, t)

    def loss(self, params: Array) -> Scalar:
        params = self.checked_params("LinearRegression.loss", params, "params")
        return 0.5 * jnp.mean((self.features @ params - self.targets) ** 2)

    @staticmethod
    def example_loss(params: Array, batch: tuple[Array, Array]) -> Scalar:
        """The mean loss over a batch `(features, targets)`: the `loss(params, batch)`
        that [`corridors.sgd_paths`][] and [`corridors.sgd_sde`][] take, with
        `data = (model.features, model.targets)`."""
        features, targets = batch
        return 0.5 * jnp.mean((features @ params - targets) ** 2)

    @property
    def data(self) -> tuple[Array, Array]:
        """`(features, targets)`, the data set in the form `example_loss` reads."""
        return self.features, self.targets

    @property
    def minimum(self) -> Minimum:
        location = jnp.linalg.pinv(self.features) @ self.targets
        return Minimum(self.loss(location), location)

    # ------------------------------------------------------------------ moments

    def _batch_noise(self, where: str, batch_size: Any, replacement: bool) -> float:
        n = self.features.shape[0]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InvalidInputError(
                f"{where}: `batch_size` must be an int, got {batch_size!r}."
            )
        if not 1 <= batch_size <= n:
            raise InvalidInputError(
                f"{where}: `batch_size` must lie in [1, N] = [1, {n}], got {batch_size}."
            )
        if replacement:
            return 1.0 / batch_size
        return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))

    def _expected_terms(self, mean: Array, second: Array):
        """E[θgᵀ], E[ggᵀ] and E[Σ(θ)] for θ with moments (mean, second)."""
        a, b, x, y = self.A, self.b, self.features, self.targets
        theta_g = second @ a - jnp.outer(mean, b)
        g_g = a @ second @ a - a @ jnp.outer(mean, b) - jnp.outer(b, mean) @ a
        g_g = g_g + jnp.outer(b, b)
        # E(xᵢᵀθ − yᵢ)² per example, then (1/N)Σ xᵢxᵢᵀ·E(xᵢᵀθ − yᵢ)².
        residual2 = jnp.einsum("ni,ij,nj->n", x, second, x) - 2 * y * (x @ mean) + y**2
        per_example = jnp.einsum("n,ni,nj->ij", residual2, x, x) / x.shape[0]
        return theta_g, g_g, per_example - g_g

    def sgd_moments(
        self,
        k: int,
        lr: float | Array,
        batch_size: int,
        *,
        replacement: bool = True,
    ) -> tuple[Array, Array]:
        """Exact mean and second moment of SGD after `k` steps from `params0`.

        θ' = θ − h·g_B with E g_B = ∇L(θ) and Cov g_B = c·Σ(θ) give the closed
        recursion m' = m − h(Am − b), S' = S − h(E[θgᵀ] + E[gθᵀ]) + h²(E[ggᵀ] + c·E Σ).

        **Arguments:**

        - `k`: the number of steps, an int ≥ 0.
        - `lr`: the learning rate h > 0.
        - `batch_size`: B in [1, N].
        - `replacement`: the sampling convention (see the class docstring).

        **Returns:**

        `(mean, second_moment)`: E θ_k, shape (d,), and E θ_kθ_kᵀ, shape (d, d).
        """
        where = "LinearRegression.sgd_moments"
        k = check_steps(where, "k", k)
        noise = self._batch_noise(where, batch_size, replacement)
        lr = jnp.asarray(check_lr(where, lr), self.A.dtype)
        # k is traced (a while loop) so new step counts do not recompile.
        return _sgd_moments(self, jnp.asarray(k), lr, jnp.asarray(noise, self.A.dtype))

    def sme_moments(
        self,
        t: float | Array,
        lr: float | Array,
        batch_size: int,
        order: int = 1,
        *,
        replacement: bool = True,
    ) -> tuple[Array, Array]:
        """Exact mean and second moment of the SME at flow time `t`, from `params0`.

        The SME dΘ = −P(AΘ − b)dt + √(h·c)Σ^{1/2}dW, P = I (order 1) or I + (h/2)A
        (order 2: the drift −∇(L + (h/4)‖∇L‖²)), has the linear moment equations
        m' = −P(Am − b), S' = −(E[θgᵀ]P + P E[gθᵀ]) + h·c·E Σ; they are solved with
        one matrix exponential of the (d + d² + 1)-dimensional augmented system.

        **Arguments:**

        - `t`: the flow time ≥ 0 (k steps of SGD correspond to t = k·lr).
        - `lr`: the learning rate h > 0.
        - `batch_size`: B in [1, N].
        - `order`: 1 or 2.
        - `replacement`: the sampling convention of the modelled SGD.

        **Returns:**

        `(mean, second_moment)`: E Θ(t), shape (d,), and E Θ(t)Θ(t)ᵀ, shape (d, d).
        """
        where = "LinearRegression.sme_moments"
        if order not in (1, 2) or isinstance(order, bool):
            raise InvalidInputError(f"{where}: `order` must be 1 or 2, got {order!r}.")
        noise = self._batch_noise(where, batch_size, replacement)
        lr = jnp.asarray(check_lr(where, lr), self.A.dtype)
        t = jnp.asarray(check_nonnegative(where, "t", t), self.A.dtype)
        return _sme_moments(self, t, lr, jnp.asarray(noise, self.A.dtype), order)


@eqx.filter_jit
def _sgd_moments(model: LinearRegression, k: Array, lr: Array, noise: Array):
    def step(_, moments):
        mean, second = moments
        theta_g, g_g, sigma = model._expected_terms(mean, second)
        new_mean = mean - lr * (model.A @ mean - model.b)
        new_second = second - lr * (theta_g + theta_g.T) + lr**2 * (g_g + noise * sigma)
        return new_mean, 0.5 * (new_second + new_second.T)

    start = (model.params0, jnp.outer(model.params0, model.params0))
    return jax.lax.fori_loop(0, k, step, start)


@eqx.filter_jit
def _sme_moments(model: LinearRegression, t: Array, lr: Array, noise: Array, order):
    d = model.params0.shape[0]
    p = jnp.eye(d, dtype=lr.dtype)
    if order == 2:
        p = p + 0.5 * lr * model.A

    def rhs(state):
        mean, second = state[:d], state[d:].reshape(d, d)
        theta_g, _, sigma = model._expected_terms(mean, second)
        d_mean = -p @ (model.A @ mean - model.b)
        d_second = -(theta_g @ p + p @ theta_g.T) + lr * noise * sigma
        return jnp.concatenate([d_mean, d_second.ravel()])

    zero = jnp.zeros(d + d * d, lr.dtype)
    # The moment equations are affine, state' = J·state + r: exponentiate [[J, r], [0, 0]].
    jac, offset = jax.jacfwd(rhs)(zero), rhs(zero)
    size = d + d * d
    generator = jnp.zeros((size + 1, size + 1), lr.dtype)
    generator = generator.at[:size, :size].set(jac).at[:size, size].set(offset)
    start = jnp.concatenate(
        [
            model.params0,
            jnp.outer(model.params0, model.params0).ravel(),
            jnp.ones(1, lr.dtype),
        ]
    )
    state = jax.scipy.linalg.expm(t * generator) @ start
    second = state[d:size].reshape(d, d)
    return state[:d], 0.5 * (second + second.T)
