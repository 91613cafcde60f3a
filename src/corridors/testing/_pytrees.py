"""Strategies for random params pytrees and learning rates."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jaxtyping import PyTree

from .._checks import InvalidInputError

_KEYS = ("w", "b", "kernel", "bias", "scale", "embed")


class _Shape(tuple):
    """A leaf's shape inside a drawn structure (told apart from tuple nodes)."""


def _structures(
    max_leaves: int, max_depth: int, max_leaf_size: int
) -> st.SearchStrategy:
    """Nested dicts/tuples/lists whose leaves are `_Shape`s (0-D to 2-D)."""
    side = st.integers(1, max(1, min(3, max_leaf_size)))
    shapes = st.one_of(
        st.just(_Shape(())),
        st.tuples(side).map(_Shape),
        st.tuples(side, side).map(_Shape),
    ).filter(lambda s: math.prod(s) <= max_leaf_size)

    def nodes(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(
            st.dictionaries(st.sampled_from(_KEYS), children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.lists(children, min_size=1, max_size=3),
        )

    structure = shapes
    for _ in range(max_depth):
        structure = st.one_of(shapes, nodes(structure))
    return structure.filter(lambda s: 1 <= _count_leaves(s) <= max_leaves)


def _count_leaves(structure: Any) -> int:
    return len(jax.tree.leaves(structure, is_leaf=lambda x: isinstance(x, _Shape)))


def _values(draw, shape: tuple, min_value: float, max_value: float, dtype) -> jax.Array:
    elements = st.floats(
        min_value,
        max_value,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=64,
    )
    array = draw(hnp.arrays(np.float64, tuple(shape), elements=elements))
    return jnp.asarray(array, dtype)


@st.composite
def _pytrees(draw, like, max_leaves, max_depth, max_leaf_size, min_value, max_value):
    dtype = jnp.result_type(float)
    if like is None:
        structure = draw(_structures(max_leaves, max_depth, max_leaf_size))
        leaves, treedef = jax.tree.flatten(
            structure, is_leaf=lambda x: isinstance(x, _Shape)
        )
        shapes = [tuple(leaf) for leaf in leaves]
    else:
        leaves, treedef = jax.tree.flatten(like)
        shapes = [jnp.shape(leaf) for leaf in leaves]
        dtype = jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves])
    values = [_values(draw, shape, min_value, max_value, dtype) for shape in shapes]
    return jax.tree.unflatten(treedef, values)


def pytrees(
    *,
    like: PyTree | None = None,
    max_leaves: int = 4,
    max_depth: int = 2,
    max_leaf_size: int = 6,
    min_value: float = -2.0,
    max_value: float = 2.0,
) -> st.SearchStrategy[PyTree]:
    """Random params pytrees: nested dicts, tuples and lists of arrays of mixed shapes.

    **Arguments:**

    - `like`: a template pytree; if given, draw pytrees with exactly its structure,
      shapes and floating dtype (e.g. tangents for a given params), ignoring the size
      options.
    - `max_leaves`: at most this many arrays (at least one).
    - `max_depth`: nesting depth of containers (0: a single array).
    - `max_leaf_size`: at most this many entries per array; leaves are 0-D, 1-D or
      2-D with sides ≤ 3.
    - `min_value`, `max_value`: the range of every entry.

    **Returns:**

    A strategy for pytrees of floating JAX arrays (the default float dtype: float64
    under `jax_enable_x64`) with finite entries in [min_value, max_value] (no NaN, no
    Inf, no subnormals) and at least one leaf. Dict keys are strings.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from hypothesis import given, settings
    import corridors as cr
    from corridors.testing import assert_tree_allclose, pytrees

    def loss(params):  # ½‖θ‖² over every leaf: H = I
        return 0.5 * sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(params))

    @settings(max_examples=3, derandomize=True, deadline=None, database=None)
    @given(pytrees(max_leaves=3))
    def test_hvp_of_the_squared_norm_is_the_tangent(tree):
        assert_tree_allclose(cr.hvp(loss, tree, tree), tree)

    test_hvp_of_the_squared_norm_is_the_tangent()  # pytest would call it for you
    ```
    """
    if like is not None and not jax.tree.leaves(like):
        raise InvalidInputError("pytrees: `like` has no array leaves.")
    for name, value in (("max_leaves", max_leaves), ("max_leaf_size", max_leaf_size)):
        if not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"pytrees: `{name}` must be an int ≥ 1, got {value!r}."
            )
    if not isinstance(max_depth, int) or max_depth < 0:
        raise InvalidInputError(
            f"pytrees: `max_depth` must be an int ≥ 0, got {max_depth!r}."
        )
    if not (math.isfinite(min_value) and math.isfinite(max_value)) or not (
        min_value <= max_value
    ):
        raise InvalidInputError(
            f"pytrees: need finite min_value ≤ max_value, got [{min_value}, {max_value}]."
        )
    return _pytrees(like, max_leaves, max_depth, max_leaf_size, min_value, max_value)


def learning_rates(
    min_value: float = 1e-4, max_value: float = 1.0
) -> st.SearchStrategy[float]:
    """Learning rates, log-uniformly spread over [min_value, max_value].

    **Arguments:**

    - `min_value`, `max_value`: the range, 0 < min_value ≤ max_value < ∞.

    **Returns:**

    A strategy for Python floats h with min_value ≤ h ≤ max_value; every decade in the
    range is about equally likely.

    **Example:**

    ```python
    import jax.numpy as jnp
    from hypothesis import given, settings
    import corridors as cr
    from corridors.testing import learning_rates

    loss = lambda p: 0.5 * jnp.sum(p**2)  # GD: θ_k = (1 − lr)^k·θ_0

    @settings(max_examples=10, derandomize=True, deadline=None, database=None)
    @given(learning_rates(1e-3, 0.5))
    def test_gd_on_a_quadratic_is_geometric(lr):
        assert 1e-3 <= lr <= 0.5
        assert jnp.allclose(cr.gd(loss, jnp.ones(1), lr, 3)[-1], (1 - lr) ** 3, rtol=1e-6)

    test_gd_on_a_quadratic_is_geometric()  # pytest would call it for you
    ```
    """
    if not (0 < min_value <= max_value < math.inf):
        raise InvalidInputError(
            "learning_rates: need 0 < min_value ≤ max_value < inf, got "
            f"[{min_value}, {max_value}]."
        )
    low, high = math.log(min_value), math.log(max_value)
    exponents = st.floats(low, high, allow_nan=False, allow_infinity=False)
    return exponents.map(lambda e: min(max(math.exp(e), min_value), max_value))
