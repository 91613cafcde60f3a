"""A corridor with data noise: GD stays on the flow, SGD and its SME leave it, at the
rate SGD's per-batch regularizer predicts.

Per-example losses ℓᵢ(θ) = θ₀ + sᵢ(κ/2)θ₁² with Σsᵢ = 0: the full-batch loss θ₀ is a
plane (H = 0, a corridor) with the straight flow θ(t) = θ(0) − t·e₀, but every example
is curved along θ₁, so the per-batch regularizer R = (h/4)(1/N)Σ‖∇ℓᵢ − ∇L‖²
= (h/4)κ²·mean(s²)·θ₁² does not vanish there.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr

S = jnp.array([1.0, -1.0, 2.0, -2.0])
KAPPA = 1.0
THETA0 = jnp.array([0.0, 1.0])
Z = 3.29  # 99.9% normal quantile (fixed keys: a failure is a bug, not bad luck)


def loss(theta, s):
    """The mean over a batch of signs `s` of θ₀ + s(κ/2)θ₁²."""
    return theta[0] + 0.5 * KAPPA * jnp.mean(s) * theta[1] ** 2


def flow(t):
    return THETA0 - jnp.asarray(t)[..., None] * jnp.array([1.0, 0.0])


def per_batch(lr):
    """sgd_regularizers with each example its own batch (B = 1)."""
    return cr.sgd_regularizers(loss, THETA0, lr, (S[:, None],))


def _within(samples, exact, label):
    mean = samples.mean(0)
    stderr = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - exact) <= Z * stderr), (label, mean, exact, stderr)


def test_gd_stays_on_the_flow():
    lr, k = 0.3, 40
    full = lambda theta: loss(theta, S)  # noqa: E731
    assert float(cr.corridor_score(full, THETA0)) == 0.0
    iterates = cr.gd(full, THETA0, lr, k)
    np.testing.assert_allclose(iterates, flow(lr * jnp.arange(k + 1)), atol=1e-13)
    # The full-batch regularizer's gradient vanishes, the per-batch one does not.
    reg = per_batch(lr)
    np.testing.assert_allclose(reg.full_batch_grad, 0.0, atol=1e-15)
    expected = 0.25 * lr * KAPPA**2 * jnp.mean(S**2) * THETA0[1] ** 2
    np.testing.assert_allclose(reg.per_batch, expected, rtol=1e-13)


def _rate_setup():
    lr, k = 0.02, 10
    return lr, k, lr * k, 4 * float(per_batch(lr).per_batch)


def test_sgd_leaves_at_the_per_batch_rate():
    # SGD (B = 1, with replacement): θ₁ ← θ₁(1 − hκs), so the squared distance from
    # the flow line has E = θ₁²((1 + h²κ²·mean s²)^k − 1) exactly, and its rate at
    # t = 0 is d/dt E‖θ − φ‖² = h·tr Σ = 4R.
    lr, k, t, rate = _rate_setup()
    runs = cr.sgd_paths(
        loss,
        THETA0,
        lr,
        S,
        batch_size=1,
        n_steps=k,
        key=jax.random.key(0),
        n_paths=20_000,
    )
    distance2 = jnp.sum((runs.params[:, -1] - flow(t)) ** 2, -1)
    exact = THETA0[1] ** 2 * ((1 + lr**2 * KAPPA**2 * jnp.mean(S**2)) ** k - 1)
    _within(distance2, exact, "SGD")
    # To leading order it is rate·t (here rate·t/θ₁² = 0.01: within 1%).
    assert abs(float(exact) / (rate * t) - 1) < 0.01


@pytest.mark.slow
def test_sme_leaves_at_the_per_batch_rate():
    # The SME: dθ₁ = √h·κ·rms(s)·θ₁ dW, so E‖Θ − φ‖² = θ₁²(exp(4R t/θ₁²) − 1).
    lr, _, t, rate = _rate_setup()
    sme = cr.sgd_sde(
        loss,
        THETA0,
        jnp.array([0.0, t]),
        lr,
        S,
        batch_size=1,
        key=jax.random.key(1),
        n_paths=20_000,
    )
    distance2 = jnp.sum((sme.params[:, -1] - flow(t)) ** 2, -1)
    exact = THETA0[1] ** 2 * jnp.expm1(rate * t / THETA0[1] ** 2)
    _within(distance2, exact, "SME")
    assert abs(float(exact) / (rate * t) - 1) < 0.01


def test_per_batch_regularizer_is_the_stratonovich_drift_of_the_sme():
    # The SME's diffusion columns σⱼ = √(h/N)(gⱼ − ḡ): the Itô-to-Stratonovich drift
    # correction ½Σⱼ(∂σⱼ)σⱼ, computed here by forward-mode derivatives of σⱼ, equals
    # the gradient of sgd_regularizers' per-batch term (B = 1) — on the corridor and
    # on a random tanh network, where nothing is special.
    lr = 0.1
    key_w, key_x, key_y = jax.random.split(jax.random.key(7), 3)
    xs = jax.random.normal(key_x, (6, 3))
    ys = jax.random.normal(key_y, (6,))
    net_params = jax.random.normal(key_w, (3, 4))

    def net_loss(w, batch):
        x, y = batch
        return 0.5 * jnp.mean((jnp.tanh(x @ w).sum(-1) - y) ** 2)

    cases = [
        (loss, THETA0, S, (S[:, None],)),
        (net_loss, net_params, (xs, ys), (xs[:, None], ys[:, None])),
    ]
    for fn, params, data, batches in cases:
        n = jax.tree.leaves(data)[0].shape[0]

        def column(theta, j, fn=fn, data=data, n=n):
            grads = jax.vmap(
                lambda ex: jax.grad(fn)(theta, jax.tree.map(lambda x: x[None], ex))
            )(data)
            return jnp.sqrt(lr / n) * (grads[j] - grads.mean(0))

        def product(j, params=params, column=column):
            tangent = column(params, j)
            return jax.jvp(lambda th: column(th, j), (params,), (tangent,))[1]

        correction = 0.5 * jax.vmap(product)(jnp.arange(n)).sum(0)
        reg = cr.sgd_regularizers(
            lambda th, *batch, fn=fn: fn(th, batch if len(batch) > 1 else batch[0]),
            params,
            lr,
            batches,
        )
        np.testing.assert_allclose(
            correction, reg.per_batch_grad, rtol=1e-12, atol=1e-14
        )


@pytest.mark.slow
@pytest.mark.parametrize("solver", [None, diffrax.Euler()])
def test_sme_log_distance_drifts_as_the_per_batch_gradient(solver):
    # The typical (median) path: E log|θ₁(t)/θ₁(0)| = −(∂R/∂θ₁)/θ₁·t exactly for the
    # SME (geometric Brownian motion), and to leading order for SGD — the per-batch
    # regularizer's pull, measured on the paths, in both the Itô and the Stratonovich
    # solver.
    lr, t = 0.05, 2.0
    grad = float(per_batch(lr).per_batch_grad[1]) / float(THETA0[1])
    sme = cr.sgd_sde(
        loss,
        THETA0,
        jnp.array([0.0, t]),
        lr,
        S,
        batch_size=1,
        key=jax.random.key(2),
        n_paths=4000,
        solver=solver,
        dt=lr / 8,
    )
    _within(jnp.log(jnp.abs(sme.params[:, -1, 1])), -grad * t, "SME")
    k = round(t / lr)
    runs = cr.sgd_paths(
        loss,
        THETA0,
        lr,
        S,
        batch_size=1,
        n_steps=k,
        key=jax.random.key(3),
        n_paths=4000,
    )
    exact_sgd = k * jnp.mean(jnp.log(jnp.abs(1 - lr * KAPPA * S)))
    _within(jnp.log(jnp.abs(runs.params[:, -1, 1])), exact_sgd, "SGD")
    assert abs(float(exact_sgd) / (-grad * t) - 1) < 0.1


def test_shuffled_epoch_drifts_by_the_per_batch_gradient():
    # One epoch through the N examples in order: the displacement off the flow is
    # −N·h·∇R + O(h⁴) (Smith et al. 2021), here −5h²κ²θ₁ + 4h⁴κ⁴θ₁.
    lrs = np.array([0.08, 0.04, 0.02, 0.01, 0.005])
    gaps = []
    for lr in lrs:
        after = cr.sgd(loss, THETA0, lr, (S[:, None],))[-1]
        displacement = after - flow(lr * S.shape[0])
        predicted = -S.shape[0] * lr * per_batch(lr).per_batch_grad
        gaps.append(float(jnp.linalg.norm(displacement - predicted)))
        assert float(jnp.linalg.norm(predicted)) > 0
    assert abs(cr.drift_order(lrs, gaps).order - 4) < 0.2
