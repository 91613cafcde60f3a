"""A model as pure functions of plain parameter dictionaries.

The corridor measurements need the loss as a pure function of the parameters,
`loss(params, *args)`. A `Network` holds the static part of a Flax NNX model (its
graph definitions for training, evaluation and measurement) and rebuilds the module
inside each traced function from two nested dicts of arrays: `params` (the `nnx.Param`
variables) and `batch_stats` (the `nnx.BatchStat` running averages of batch norm).

Batch norm has three modes here:

- `"train"`: normalize with the statistics of the batch itself and return the updated
  running averages (momentum 0.9);
- `"eval"`: normalize with the running averages (test accuracy);
- `"measure"`: normalize with the statistics of the batch itself, discard the running
  averages, compute in float32. For a fixed batch this is a deterministic function of
  the parameters, and it is the very function a training step on that batch
  differentiates, so the corridor score, drift, sharpness and RSI/EB describe the
  landscape that SGD actually descends.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._checks import InvalidInputError
from ._models import build_model

MODES = ("train", "eval", "measure")


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """A Flax NNX model split into static graph definitions and pure functions.

    **Fields:**

    - `name`: the model name (see `build_model`).
    - `num_classes`, `image_shape`: output and input sizes.
    - `dtype`: computation dtype in `"train"` and `"eval"` mode (`None`: float32).
    - `has_batch_norm`: whether the model holds batch-norm statistics.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    dtype: Any
    has_batch_norm: bool
    _graphdefs: dict
    _params_def: Any
    _stats_def: Any
    _init_seed_builder: Any

    def init(self, seed: int) -> tuple[dict, dict]:
        """Fresh `(params, batch_stats)` for `seed`, as nested dicts of float32 arrays.

        Initialization is one compiled program shared by all seeds (op by op, every
        initializer would be compiled for every parameter shape), drawing from the
        "rbg" PRNG, which XLA compiles several times faster than threefry.
        """
        return self._init(jnp.asarray(seed, jnp.uint32))

    @functools.cached_property
    def _init(self):
        def init(seed):
            module = self._init_seed_builder(jax.random.key(seed, impl="rbg"))
            _, params, stats = nnx.split(module, nnx.Param, nnx.BatchStat)
            return nnx.to_pure_dict(params), nnx.to_pure_dict(stats)

        return jax.jit(init)

    def apply(
        self, params: dict, batch_stats: dict, images: jax.Array, *, mode: str
    ) -> tuple[jax.Array, dict]:
        """Logits for float `images` and the batch statistics after the call.

        **Arguments:**

        - `params`, `batch_stats`: nested dicts as returned by `init`.
        - `images`: float NHWC images, already normalized.
        - `mode`: "train", "eval" or "measure" (see the module docstring).

        **Returns:**

        `(logits, batch_stats)`; the statistics are updated only in "train" mode.
        """
        if mode not in MODES:
            raise InvalidInputError(
                f"Network.apply: `mode` must be one of {MODES}, got {mode!r}."
            )
        param_state = jax.tree.unflatten(self._params_def, jax.tree.leaves(params))
        stats_state = jax.tree.unflatten(self._stats_def, jax.tree.leaves(batch_stats))
        module = nnx.merge(self._graphdefs[mode], param_state, stats_state)
        if mode == "measure":
            images = images.astype(jnp.float32)
        logits = module(images).astype(jnp.float32)
        if mode != "train":
            return logits, batch_stats
        new_stats = nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))
        return logits, new_stats


def _split_defs(module: nnx.Module):
    graphdef, params, stats = nnx.split(module, nnx.Param, nnx.BatchStat)
    return graphdef, params, stats


def make_network(
    name: str,
    *,
    num_classes: int,
    image_shape: tuple[int, int, int],
    width: int | None = None,
    variant: str = "auto",
    dtype: Any = None,
) -> Network:
    """A `Network` for one of the models of `build_model`.

    **Arguments:** as for `build_model` (without `seed`: pass it to `Network.init`).

    **Returns:**

    A `Network`; `network.init(seed)` gives `(params, batch_stats)`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors.train as ct
    network = ct.make_network("mlp", num_classes=3, image_shape=(4, 4, 1), width=8)
    params, batch_stats = network.init(0)
    print(sorted(params), network.has_batch_norm)  # ['head', 'hidden1', 'hidden2'] False
    images = jnp.zeros((2, 4, 4, 1))
    logits, _ = network.apply(params, batch_stats, images, mode="eval")
    print(logits.shape)  # (2, 3)
    ```
    """
    options = {
        "num_classes": num_classes,
        "image_shape": tuple(image_shape),
        "width": width,
        "variant": variant,
    }

    def builder(seed, dtype=dtype):
        return build_model(name, seed=seed, dtype=dtype, **options)

    graphdefs = {}
    abstract = nnx.eval_shape(lambda: builder(0))
    abstract.train()
    graphdefs["train"], params_state, stats_state = _split_defs(abstract)
    abstract.eval()
    graphdefs["eval"] = _split_defs(abstract)[0]
    measure = nnx.eval_shape(lambda: builder(0, dtype=None))
    measure.train()
    graphdefs["measure"] = _split_defs(measure)[0]
    params_def = jax.tree.structure(params_state)
    stats_def = jax.tree.structure(stats_state)
    # The pure dicts must flatten in the same leaf order as the nnx States.
    for state in (params_state, stats_state):
        pure = nnx.to_pure_dict(state)
        state_shapes = [leaf.shape for leaf in jax.tree.leaves(state)]
        pure_shapes = [leaf.shape for leaf in jax.tree.leaves(pure)]
        if state_shapes != pure_shapes:  # pragma: no cover - a flax change
            raise RuntimeError(
                "make_network: nnx.State and its pure dict flatten in different orders"
            )
    return Network(
        name=name,
        num_classes=num_classes,
        image_shape=tuple(image_shape),
        dtype=dtype,
        has_batch_norm=bool(jax.tree.leaves(stats_state)),
        _graphdefs=graphdefs,
        _params_def=params_def,
        _stats_def=stats_def,
        _init_seed_builder=builder,
    )


def kernel_mask(params: dict) -> dict:
    """True for the weight matrices and convolution kernels (the leaves named
    "kernel"), False for biases and batch-norm scales: what weight decay acts on."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params
    )


def l2_penalty(params: dict, weight_decay: float) -> jax.Array:
    """(weight_decay/2)·Σ‖kernel‖² over the kernels of `params`."""
    mask = kernel_mask(params)
    kernels = [
        leaf
        for leaf, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True)
        if m
    ]
    if not kernels or weight_decay == 0:
        return jnp.zeros((), jnp.float32)
    return 0.5 * weight_decay * optax.tree.norm(kernels, squared=True)


def normalize(images: jax.Array, mean: np.ndarray, std: np.ndarray) -> jax.Array:
    """uint8 images → (x/255 − mean)/std in float32; float images pass through."""
    if jnp.issubdtype(images.dtype, jnp.integer):
        images = images.astype(jnp.float32) / 255.0
        return (images - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
    return images.astype(jnp.float32)
