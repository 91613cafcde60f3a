"""The small classifier of `corridors.train` (features, tanh MLP, minibatch loop),
against hand-written numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import corridors as cr
import corridors.train as ct


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return ct.load_features("digits", seed=3, n_train=200, n_test=50)


def softmax_regression_sgd(w, b, x, y, lr, batches):
    """Plain numpy SGD on softmax regression: the gradient in closed form."""
    onehot = np.eye(w.shape[1])[y]
    for index in batches:
        logits = x[index] @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        residual = (p - onehot[index]) / len(index)
        w, b = w - lr * x[index].T @ residual, b - lr * residual.sum(0)
    return w, b


def test_features_come_from_the_digits_splits(digits):
    data, warning = digits
    assert warning is None and data.name == "digits"
    assert data.x_train.shape == (200, 64) and data.x_test.shape == (50, 64)
    assert data.n_classes == 10 and 0.0 <= data.x_train.min() < data.x_train.max() <= 1
    images = ct.digits()
    test_rows = images.test.images.reshape(len(images.test), -1) / 255.0
    # Every test sample is one of the held-out images (the last 297 of digits).
    distances = np.abs(data.x_test[:, None] - test_rows[None]).sum(-1).min(1)
    np.testing.assert_array_equal(distances, 0.0)


def test_fit_minibatches_is_sgd(digits):
    data, _ = digits
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    params = ct.init_mlp(jax.random.key(0), ct.mlp_sizes("linear", data, 0))
    batches = np.random.default_rng(0).integers(0, 200, (7, 16))
    sgd = optax.with_extra_args_support(optax.sgd(0.5))
    final, losses, lrs = ct.fit_minibatches(sgd, params, x, y, jnp.asarray(batches))
    w, b = softmax_regression_sgd(
        np.asarray(params[0]["w"]), np.asarray(params[0]["b"]), data.x_train,
        data.y_train, 0.5, batches,
    )  # fmt: skip
    np.testing.assert_allclose(final[0]["w"], w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(final[0]["b"], b, rtol=1e-10, atol=1e-12)
    assert losses.shape == (8,) and float(losses[-1]) == pytest.approx(
        float(ct.mlp_loss(final, x, y)), rel=1e-12
    )
    assert np.all(np.isnan(lrs))  # optax.sgd keeps no lr in its state


def test_clr_steps_are_the_polyak_steps_of_each_batch(digits):
    data, _ = digits
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    params = ct.init_mlp(jax.random.key(1), ct.mlp_sizes("mlp", data, 8))
    batches = jnp.asarray(np.random.default_rng(1).integers(0, 200, (3, 32)))
    _, _, lrs = ct.fit_minibatches(cr.lr.clr(), params, x, y, batches)
    value_and_grad = jax.jit(jax.value_and_grad(ct.mlp_loss))
    for index, lr in zip(batches, np.asarray(lrs), strict=True):  # L_B/‖∇L_B‖²
        value, grads = value_and_grad(params, x[index], y[index])
        assert lr == pytest.approx(float(value / optax.tree.norm(grads) ** 2), rel=1e-9)
        params = optax.tree.add_scale(params, -lr, grads)


def test_folder_data_and_its_errors(tmp_path):
    with pytest.raises(ValueError, match="needs --data-dir"):
        ct.load_features("folder", n_train=5, n_test=5)
    with pytest.raises(ValueError, match="no data file"):
        ct.load_features("folder", n_train=5, n_test=5, data_dir=tmp_path)
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "data.npz", x=rng.normal(size=(30, 3)), y=rng.integers(0, 2, 30)
    )
    data, _ = ct.load_features("folder", n_train=25, n_test=10, data_dir=tmp_path)
    assert (len(data.x_train), len(data.x_test)) == (25, 5)  # what is left
    with pytest.raises(ValueError, match="`model` must be one of"):
        ct.mlp_sizes("resnet", data, 4)
