"""Small classification data sets and the networks the CLI trains on them.

- `digits`: scikit-learn's embedded 8×8 handwritten digits (1797 images, 64 features,
  10 classes; no download). Without scikit-learn installed it falls back to
  `synthetic`, with a warning.
- `synthetic`: 10 Gaussian classes in 64 dimensions, drawn from the seed.
- `folder`: `DATA_DIR/data.npz` holding `x` (n, d) floats and `y` (n,) integer labels.

The loss and the network are module-level functions, so every jitted function that
receives them compiles once per shape, however often the CLI calls it.
"""

import dataclasses
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._options import UsageError

DATASETS = ("digits", "synthetic", "folder")
MODELS = ("mlp", "linear")


@dataclasses.dataclass(frozen=True)
class Data:
    """A train/test split: `x_*` float64 arrays (n, d), `y_*` int arrays (n,)."""

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


def _synthetic(seed: int, n: int = 1797) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(seed + 10_000)
    means = rng.normal(size=(10, 64))
    labels = rng.integers(0, 10, size=n)
    x = means[labels] + 1.5 * rng.normal(size=(n, 64))
    return x / 4.0, labels, "synthetic: 10 Gaussian classes in 64-D"


def _digits(seed: int) -> tuple[np.ndarray, np.ndarray, str, str | None]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        x, y, text = _synthetic(seed)
        return (
            x,
            y,
            text,
            "scikit-learn is not installed, so the digits data set is replaced by "
            "synthetic Gaussian classes (pip install scikit-learn for digits).",
        )
    digits = load_digits()
    return (
        digits.data / 16.0,
        digits.target,
        "scikit-learn digits (8×8 images, pixels scaled to [0, 1])",
        None,
    )


def _folder(data_dir: pathlib.Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    if data_dir is None:
        raise UsageError("--dataset folder needs --data-dir DIR (holding data.npz).")
    path = pathlib.Path(data_dir) / "data.npz"
    if not path.is_file():
        raise UsageError(f"no data file {path} (expected arrays x (n, d) and y (n,)).")
    try:
        with np.load(path, allow_pickle=False) as file:
            x, y = np.asarray(file["x"], float), np.asarray(file["y"])
    except (KeyError, ValueError, OSError) as error:
        raise UsageError(f"{path}: cannot read arrays x and y ({error}).") from None
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
        raise UsageError(
            f"{path}: x must be (n, d) and y (n,), got {x.shape} and {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise UsageError(f"{path}: y must hold integer class labels ≥ 0.")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{path}: x holds NaN or Inf.")
    return x, y.astype(int), f"{path} ({x.shape[0]} samples, {x.shape[1]} features)"


def load(
    name: str,
    *,
    seed: int,
    n_train: int,
    n_test: int,
    data_dir: pathlib.Path | None = None,
) -> tuple[Data, str | None]:
    """A shuffled train/test split of `name`, and a warning (or None).

    At most `n_train` training and `n_test` test samples.
    """
    warning = None
    if name == "digits":
        x, y, text, warning = _digits(seed)
        if warning:  # scikit-learn is missing: say what was used instead
            name = "synthetic"
    elif name == "synthetic":
        x, y, text = _synthetic(seed)
    elif name == "folder":
        x, y, text = _folder(data_dir)
    else:  # the parser's choices make this unreachable
        raise UsageError(f"unknown dataset {name!r}; choose from {DATASETS}.")
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = min(n_train, len(x) - 1)
    n_test = min(n_test, len(x) - n_train)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    data = Data(name, text, x[train], y[train], x[test], y[test])
    return data, warning


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict]:
    """tanh MLP parameters: weights N(0, 1/fan_in), zero biases; float64 under x64."""
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        weight = jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": weight, "b": jnp.zeros(fan_out)})
    return params


def logits(params: list[dict], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def cross_entropy(params: list[dict], x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy: `loss(params, x, y)` in the corridors convention."""
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def accuracy(params: list[dict], x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits(params, x), axis=-1) == y)


def layer_sizes(model: str, data: Data, hidden: int) -> tuple[int, ...]:
    if model == "linear":
        return (data.n_features, data.n_classes)
    return (data.n_features, hidden, data.n_classes)


def count(params) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
