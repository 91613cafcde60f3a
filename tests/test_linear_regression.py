"""LinearRegression: exact SGD and SME moments, and the exact weak order of the SME."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr
from corridors.landscapes import LinearRegression, Quadratic

LRS = np.array([0.04, 0.02, 0.01, 0.005, 0.0025, 0.00125])
HORIZON = 1.0
BATCH = 2


@pytest.fixture(scope="module")
def model():
    features = jax.random.normal(jax.random.key(1), (6, 2))
    targets = jax.random.normal(jax.random.key(2), (6,))
    return LinearRegression(features, targets, params0=jnp.array([1.0, -0.5]))


def _loss_moment(model, mean, second):
    """E L(θ) from E θ and E θθᵀ: ½tr(A S) − bᵀm + c."""
    return 0.5 * jnp.trace(model.A @ second) - model.b @ mean + model.c


def _weak_errors(model, order, *, replacement=True):
    norm_errors, loss_errors = [], []
    for lr in LRS:
        k = round(HORIZON / lr)
        sgd = model.sgd_moments(k, lr, BATCH, replacement=replacement)
        sme = model.sme_moments(k * lr, lr, BATCH, order, replacement=replacement)
        norm_errors.append(abs(float(jnp.trace(sgd[1]) - jnp.trace(sme[1]))))
        loss_errors.append(
            abs(float(_loss_moment(model, *sgd) - _loss_moment(model, *sme)))
        )
    return norm_errors, loss_errors


@pytest.mark.parametrize(
    "replacement", [True, pytest.param(False, marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("order", [1, 2])
def test_exact_weak_order(model, order, replacement):
    # Both test functions, E‖θ‖² and E L(θ), at the fixed horizon T = 1.
    for errors in _weak_errors(model, order, replacement=replacement):
        measured = cr.drift_order(LRS, errors)
        assert abs(measured.order - order) < 0.2, (order, measured, errors)


def test_order_two_beats_order_one(model):
    first, _ = _weak_errors(model, 1)
    second, _ = _weak_errors(model, 2)
    assert all(b < a for a, b in zip(first, second, strict=True))


def test_sgd_mean_is_gd(model):
    lr, k = 0.3, 25
    iterates = cr.gd(model.loss, model.params0, lr, k)
    for step in (0, 1, 7, k):
        mean, _ = model.sgd_moments(step, lr, BATCH)
        np.testing.assert_allclose(mean, iterates[step], rtol=1e-13, atol=1e-14)


def test_sme_mean_is_flow_and_modified_flow(model):
    lr, t = 0.2, 1.7
    mean1, _ = model.sme_moments(t, lr, BATCH, 1)
    np.testing.assert_allclose(
        mean1, model.exact_flow(model.params0, t), rtol=1e-12, atol=1e-13
    )
    # The order-2 drift −(I + (lr/2)A)(Aθ − b) is the flow of a quadratic with
    # matrix A + (lr/2)A², solved in closed form by Quadratic.exact_flow.
    p = jnp.eye(2) + 0.5 * lr * model.A
    modified = Quadratic(p @ model.A, -p @ model.b)
    mean2, _ = model.sme_moments(t, lr, BATCH, 2)
    np.testing.assert_allclose(
        mean2, modified.exact_flow(model.params0, t), rtol=1e-12, atol=1e-13
    )


def test_sgd_second_moment_one_step_by_enumeration(model):
    # One step from a point: average over every batch of N^B index tuples.
    lr, n = 0.1, model.features.shape[0]
    theta = model.params0
    grads = jax.vmap(jax.grad(lambda p, x, y: 0.5 * (x @ p - y) ** 2), (None, 0, 0))(
        theta, model.features, model.targets
    )
    pairs = np.array([(i, j) for i in range(n) for j in range(n)])
    steps = theta - lr * 0.5 * (grads[pairs[:, 0]] + grads[pairs[:, 1]])
    expected = np.einsum("ki,kj->ij", steps, steps) / len(pairs)
    _, second = model.sgd_moments(1, lr, 2)
    np.testing.assert_allclose(second, expected, rtol=1e-13)
    # Without replacement: the N(N − 1) ordered pairs of distinct examples.
    distinct = pairs[pairs[:, 0] != pairs[:, 1]]
    steps = theta - lr * 0.5 * (grads[distinct[:, 0]] + grads[distinct[:, 1]])
    expected = np.einsum("ki,kj->ij", steps, steps) / len(distinct)
    _, second = model.sgd_moments(1, lr, 2, replacement=False)
    np.testing.assert_allclose(second, expected, rtol=1e-13)


def test_sme_second_moment_matches_small_time_expansion(model):
    # d/dt E ΘΘᵀ at t = 0 is −(θgᵀ + gθᵀ) + h·c·Σ(θ): compare with a finite difference.
    lr, eps = 0.1, 1e-6
    theta = model.params0
    residual = model.features @ theta - model.targets
    grads = model.features * residual[:, None]
    g = grads.mean(0)
    sigma = grads.T @ grads / grads.shape[0] - jnp.outer(g, g)
    slope = -(jnp.outer(theta, g) + jnp.outer(g, theta)) + lr * sigma / BATCH
    _, second = model.sme_moments(eps, lr, BATCH, 1)
    np.testing.assert_allclose(
        (second - jnp.outer(theta, theta)) / eps, slope, rtol=1e-4, atol=1e-5
    )


def test_full_batch_without_replacement_has_no_noise(model):
    # B = N without replacement: SGD is GD, and its second moment is θθᵀ of GD.
    n, lr = model.features.shape[0], 0.1
    mean, second = model.sgd_moments(12, lr, n, replacement=False)
    np.testing.assert_allclose(second, jnp.outer(mean, mean), rtol=1e-12, atol=1e-14)


def test_float32(model):
    model32 = LinearRegression(
        model.features.astype(jnp.float32), model.targets.astype(jnp.float32)
    )
    mean, second = model32.sme_moments(1.0, 0.05, BATCH, 2)
    assert mean.dtype == jnp.float32 and second.dtype == jnp.float32
    _mean64, second64 = LinearRegression(model.features, model.targets).sme_moments(
        1.0, 0.05, BATCH, 2
    )
    np.testing.assert_allclose(second, second64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m.sgd_moments(3, 0.1, 0), "batch_size"),
        (lambda m: m.sgd_moments(3, 0.1, 7), "batch_size"),
        (lambda m: m.sgd_moments(3, -0.1, 2), "lr"),
        (lambda m: m.sgd_moments(-1, 0.1, 2), "`k`"),
        (lambda m: m.sme_moments(1.0, 0.1, 2, 3), "order"),
        (lambda m: m.sme_moments(-1.0, 0.1, 2, 1), "`t`"),
    ],
)
def test_bad_moment_input(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model)


def test_bad_constructor_input():
    with pytest.raises(ValueError, match="targets"):
        LinearRegression(jnp.ones((3, 2)), jnp.ones(4))
    with pytest.raises(ValueError, match="features"):
        LinearRegression(jnp.array([1.0, jnp.nan]).reshape(2, 1), jnp.ones(2))
    with pytest.raises(ValueError, match="params0"):
        LinearRegression(jnp.ones((3, 2)), jnp.ones(3), params0=jnp.ones(3))
