"""A small classifier as pure JAX functions: data sets as feature arrays, a tanh MLP
and minibatch training with any optax transform (fixed-lr SGD, CLR, SPS_max, ...).

What `corridors demo`, `corridors drift --model` and the digits examples train: the
loss is a module-level function `mlp_loss(params, x, y)`, so every jitted function
that receives it compiles once per shape, and it is smooth (tanh), so its gradient
flow and drift are well defined. Needs no flax; scikit-learn only for digits.
"""

import dataclasses
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import InvalidInputError
from ._datasets import Dataset, digits, synthetic
from ._names import CLASSIFIERS, FEATURE_DATASETS


@dataclasses.dataclass(frozen=True)
class Features:
    """A train/test split as arrays: `x_*` float64 (n, d), `y_*` int (n,).

    **Fields:** `name` (the data set used), `description`, `x_train`, `y_train`,
    `x_test`, `y_test`.
    """

    name: str
    description: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max(initial=0)) + 1)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _flat(split) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images of an `ArraySplit` as features in [0, 1], and their labels."""
    images = split.images.reshape(len(split), -1).astype(np.float64) / 255.0
    return images, split.labels.astype(int)


def _from_dataset(dataset: Dataset, seed: int, n_train: int, n_test: int):
    rng = np.random.default_rng(seed)
    x, y = _flat(dataset.train)
    x_test, y_test = _flat(dataset.test)
    train = rng.permutation(len(x))[:n_train]
    test = rng.permutation(len(x_test))[:n_test]
    return x[train], y[train], x_test[test], y_test[test]


def _folder(data_dir: pathlib.Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    where = "load_features"
    if data_dir is None:
        raise InvalidInputError(
            f"{where}: dataset 'folder' needs --data-dir (`data_dir`), a folder "
            "holding data.npz."
        )
    path = pathlib.Path(data_dir) / "data.npz"
    if not path.is_file():
        raise InvalidInputError(
            f"{where}: no data file {path} (expected arrays x (n, d) and y (n,))."
        )
    try:
        with np.load(path, allow_pickle=False) as file:
            x, y = np.asarray(file["x"], float), np.asarray(file["y"])
    except (KeyError, ValueError, OSError) as error:
        raise InvalidInputError(
            f"{where}: {path}: cannot read arrays x and y ({error})."
        ) from None
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
        raise InvalidInputError(
            f"{where}: {path}: x must be (n, d) and y (n,), got {x.shape} and "
            f"{y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise InvalidInputError(f"{where}: {path}: y must hold integer labels ≥ 0.")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError(f"{where}: {path}: x holds NaN or Inf.")
    return x, y.astype(int), f"{path} ({x.shape[0]} samples, {x.shape[1]} features)"


def load_features(
    name: str,
    *,
    seed: int = 0,
    n_train: int,
    n_test: int,
    data_dir: str | pathlib.Path | None = None,
) -> tuple[Features, str | None]:
    """A train/test split of a small data set as feature arrays, and a warning.

    **Arguments:**

    - `name`: "digits" (`corridors.train.digits`, pixels scaled to [0, 1]; its
      fixed split: the last 297 images are the test set), "synthetic"
      (`corridors.train.synthetic` 8×8 images, 10 classes) or "folder"
      (`data_dir/data.npz` holding `x` (n, d) floats and `y` (n,) labels, shuffled
      and split).
    - `seed`: which `n_train` training and `n_test` test samples are drawn.
    - `data_dir`: the folder of "folder".

    **Returns:**

    `(Features, warning)`: the warning (else None) says when digits was replaced
    by synthetic data because scikit-learn is not installed.

    **Example:**

    ```python
    import corridors.train as ct
    data, _ = ct.load_features("digits", n_train=100, n_test=50)
    print(data.x_train.shape, data.n_classes)  # (100, 64) 10
    ```
    """
    if name not in FEATURE_DATASETS:
        raise InvalidInputError(
            f"load_features: `name` must be one of {list(FEATURE_DATASETS)}, got "
            f"{name!r}."
        )
    warning = None
    if name == "folder":
        x, y, text = _folder(data_dir)
        order = np.random.default_rng(seed).permutation(len(x))
        n_train = min(n_train, len(x) - 1)
        n_test = min(n_test, len(x) - n_train)
        train, test = order[:n_train], order[n_train : n_train + n_test]
        return Features(name, text, x[train], y[train], x[test], y[test]), None
    dataset = None
    if name == "digits":
        try:
            dataset = digits()
            text = "scikit-learn digits (8×8 images, pixels scaled to [0, 1])"
        except ImportError:
            name = "synthetic"
            warning = (
                "scikit-learn is not installed, so the digits data set is replaced "
                "by synthetic data (pip install scikit-learn for digits)."
            )
    if dataset is None:
        dataset = synthetic((8, 8, 1), 10, size=1500, test_size=297, seed=seed)
        text = "synthetic: 8×8 random images labelled by a random linear teacher"
    arrays = _from_dataset(dataset, seed, n_train, n_test)
    return Features(name, text, *arrays), warning


# -- the tanh MLP -----------------------------------------------------------------------
def mlp_sizes(model: str, data: Features, hidden: int) -> tuple[int, ...]:
    """Layer widths: "mlp" one tanh hidden layer of `hidden` units, "linear" none
    (softmax regression).

    **Example:**

    ```python
    import corridors.train as ct
    data, _ = ct.load_features("synthetic", n_train=100, n_test=50)
    print(ct.mlp_sizes("mlp", data, 16))  # (64, 16, 10)
    print(ct.mlp_sizes("linear", data, 16))  # (64, 10)
    ```
    """
    if model not in CLASSIFIERS:
        raise InvalidInputError(
            f"mlp_sizes: `model` must be one of {list(CLASSIFIERS)}, got {model!r}."
        )
    if model == "linear":
        return (data.n_features, data.n_classes)
    return (data.n_features, hidden, data.n_classes)


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict]:
    """tanh MLP parameters: weights N(0, 1/fan_in), zero biases (float64 under x64).

    **Example:**

    ```python
    import jax
    import corridors.train as ct
    params = ct.init_mlp(jax.random.key(0), (64, 16, 10))
    print([layer["w"].shape for layer in params])  # [(64, 16), (16, 10)]
    ```
    """
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        weight = jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": weight, "b": jnp.zeros(fan_out)})
    return params


def mlp_logits(params: list[dict], x: jax.Array) -> jax.Array:
    """Logits of the tanh MLP for features `x` (n, d).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import corridors.train as ct
    params = ct.init_mlp(jax.random.key(0), (4, 8, 3))
    print(ct.mlp_logits(params, jnp.ones((5, 4))).shape)  # (5, 3)
    ```
    """
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def mlp_loss(params: list[dict], x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy: `loss(params, x, y)` in the corridors convention.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import corridors.train as ct
    params = ct.init_mlp(jax.random.key(0), (4, 8, 3))
    params[-1] = {"w": jnp.zeros((8, 3)), "b": jnp.zeros(3)}  # equal logits
    x, y = jnp.ones((5, 4)), jnp.array([0, 1, 2, 0, 1])
    print(ct.mlp_loss(params, x, y))  # ≈ 1.0986 = log 3
    ```
    """
    return optax.softmax_cross_entropy_with_integer_labels(
        mlp_logits(params, x), y
    ).mean()


def mlp_accuracy(params: list[dict], x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of `x` classified as `y`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors.train as ct
    params = [{"w": jnp.eye(2), "b": jnp.zeros(2)}]  # no hidden layer: logits = x
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    print(ct.mlp_accuracy(params, x, jnp.array([0, 1, 1])))  # ≈ 0.667 = 2/3
    ```
    """
    return jnp.mean(jnp.argmax(mlp_logits(params, x), axis=-1) == y)


def fit_minibatches(
    optimizer: optax.GradientTransformationExtraArgs,
    params: list[dict],
    x: jax.Array,
    y: jax.Array,
    batches: jax.Array,
) -> tuple[list[dict], jax.Array, jax.Array]:
    """Minibatch training of the tanh MLP with an optax transform (jittable).

    **Arguments:**

    - `optimizer`: called as `update(grads, state, params, value=batch loss)` (the
      Polyak family of `corridors.lr` uses the value; wrap plain optax transforms in
      `optax.with_extra_args_support`).
    - `params`, `x`, `y`: the start and the training data.
    - `batches`: integer indices (n_steps, batch_size), one row per step.

    **Returns:**

    `(params, losses, lrs)`: the final parameters; the full training-set loss before
    each step and after the last (n_steps + 1); the step size each update used
    (the state's `lr` for the Polyak family, NaN for optimizers without one).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import optax
    import corridors.train as ct
    data, _ = ct.load_features("synthetic", n_train=64, n_test=16)
    params = ct.init_mlp(jax.random.key(0), ct.mlp_sizes("mlp", data, 8))
    sgd = optax.with_extra_args_support(optax.sgd(0.5))
    batches = jnp.arange(64).reshape(4, 16)  # 4 steps of 16 examples
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    fit = jax.jit(ct.fit_minibatches, static_argnums=0)  # one compiled program
    params, losses, lrs = fit(sgd, params, x, y, batches)
    print(losses.shape, lrs.shape)  # (5,) (4,)
    print(bool(losses[-1] < losses[0]))  # True
    ```
    """

    def step(carry, index):
        params, state = carry
        value, grads = jax.value_and_grad(mlp_loss)(params, x[index], y[index])
        updates, state = optimizer.update(grads, state, params, value=value)
        lr = getattr(state, "lr", jnp.nan)
        full = mlp_loss(params, x, y)
        return (optax.apply_updates(params, updates), state), (full, lr)

    (params, _), (losses, lrs) = jax.lax.scan(
        step, (params, optimizer.init(params)), batches
    )
    return params, jnp.append(losses, mlp_loss(params, x, y)), lrs
