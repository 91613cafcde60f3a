"""Named problems for `corridors drift`: the analytic landscapes, and a model on a
data set. Each gives a loss, a starting point drawn from the seed and a typical
learning-rate scale (the default lrs and horizon are multiples of it)."""

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._options import UsageError

LANDSCAPES = (
    "quadratic",
    "cone",
    "concave-cone",
    "cylinder-cone",
    "glued-corridor",
    "linear",
    "saddle",
    "rosenbrock",
    "deep-linear",
    "mlp-regression",
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """What `corridors drift` measures on.

    **Fields:** `name`, `description`, `loss` (`loss(params, *args)`), `params0`,
    `args`, `lr_scale` (a typical stable learning rate), `corridor` (whether the
    landscape is a corridor along the flow), `apex_time` (flow time at which the flow
    stops or meets a seam, or None), `parameters` (count).
    """

    name: str
    description: str
    loss: Callable
    params0: Any
    args: tuple
    lr_scale: float
    corridor: bool
    apex_time: float | None
    parameters: int


def _direction(key, dim):
    v = jax.random.normal(key, (dim,))
    return v / jnp.linalg.norm(v)


def _landscape(name: str, dim: int, key: jax.Array) -> tuple[Any, Any, float, str]:
    """(landscape, params0, lr scale, description)."""
    from corridors import landscapes as ls

    k1, k2 = jax.random.split(key)
    if name == "quadratic":
        rotation, _ = jnp.linalg.qr(jax.random.normal(k1, (dim, dim)))
        eigenvalues = jnp.linspace(0.5, 2.0, dim) if dim > 1 else jnp.array([2.0])
        A = (rotation * eigenvalues) @ rotation.T
        return (
            ls.Quadratic(0.5 * (A + A.T)),
            _direction(k2, dim),
            1.0,
            f"Quadratic ½θᵀAθ in {dim}-D, spectrum [0.5, 2] (no corridor)",
        )
    if name in ("cone", "concave-cone"):
        kind = ls.Cone if name == "cone" else ls.ConcaveCone
        return (
            kind(jnp.zeros(dim), 1.0),
            20.0 * _direction(k1, dim),
            1.0,
            f"{kind.__name__}(center 0, slope 1) in {dim}-D, start 20 from the apex",
        )
    if name == "cylinder-cone":
        if dim < 2:
            raise UsageError("cylinder-cone needs --dim ≥ 2.")
        projection = jnp.diag(jnp.arange(dim) > 0).astype(float)
        return (
            ls.CylinderCone(jnp.zeros(dim), 1.0, projection),
            20.0 * _direction(k1, dim),
            1.0,
            f"CylinderCone in {dim}-D (axis: first coordinate)",
        )
    if name == "glued-corridor":
        if dim < 2:
            raise UsageError("glued-corridor needs --dim ≥ 2.")
        facet = jnp.zeros((1, dim)).at[0, 0].set(2.0)
        start = (
            jnp.zeros(dim).at[0].set(3.0).at[1].set(2.0)
        )  # meets the seam at t ≈ 0.92
        return (
            ls.GluedCorridor(jnp.zeros(dim), 1.0, facet),
            start,
            1.0,
            f"GluedCorridor in {dim}-D: a plane glued to a cone (Fig. 1b); the flow "
            "meets the seam at t ≈ 0.92, where GD picks up an O(h) error",
        )
    if name == "linear":
        return (
            ls.Linear(jax.random.normal(k1, (dim,))),
            jax.random.normal(k2, (dim,)),
            1.0,
            f"Linear ⟨w, θ⟩ in {dim}-D (a corridor everywhere)",
        )
    if name == "saddle":
        return (
            ls.RuledSaddle(1.0),
            jnp.array([1.0, 0.5]),
            1.0,
            "RuledSaddle xy in 2-D (ruled, yet not a corridor)",
        )
    if name == "rosenbrock":
        start = jnp.tile(jnp.array([-1.2, 1.0]), (dim + 1) // 2)[: max(dim, 2)]
        return (
            ls.Rosenbrock(max(dim, 2)),
            start,
            1e-3,
            f"Rosenbrock in {max(dim, 2)}-D (b = 100), classic start (-1.2, 1, …)",
        )
    if name == "deep-linear":
        landscape = ls.DeepLinear(jax.random.normal(k1, (dim, dim)), dim)
        return (
            landscape,
            landscape.init(k2, scale=0.5),
            0.1,
            f"DeepLinear ½‖W₂W₁ − M‖², {dim}×{dim}",
        )
    if name == "mlp-regression":
        landscape = ls.MLPRegression((dim, 16, 1), k1, 128)
        return (
            landscape,
            landscape.init(k2),
            0.5,
            f"MLPRegression: tanh teacher–student ({dim}, 16, 1), 128 samples",
        )
    raise UsageError(
        f"unknown landscape {name!r}; choose from {', '.join(LANDSCAPES)}."
    )


def landscape_problem(name: str, *, dim: int, seed: int) -> Problem:
    landscape, params0, scale, description = _landscape(name, dim, jax.random.key(seed))
    corridor = type(landscape).is_corridor
    apex = None
    if hasattr(type(landscape), "apex_time"):
        apex = float(landscape.apex_time(params0))
    return Problem(
        name=name,
        description=description,
        loss=landscape.loss,
        params0=params0,
        args=(),
        lr_scale=scale,
        corridor=corridor,
        apex_time=apex,
        parameters=int(sum(np.size(x) for x in jax.tree.leaves(params0))),
    )


def model_problem(
    model: str,
    dataset: str,
    *,
    data_dir: pathlib.Path | None,
    hidden: int,
    n_train: int,
    seed: int,
) -> tuple[Problem, str | None]:
    from . import _data

    data, warning = _data.load(
        dataset, seed=seed, n_train=n_train, n_test=0, data_dir=data_dir
    )
    sizes = _data.layer_sizes(model, data, hidden)
    params0 = _data.init_mlp(jax.random.key(seed), sizes)
    kind = "softmax regression" if model == "linear" else "tanh MLP"
    problem = Problem(
        name=f"{model} on {dataset}",
        description=f"{kind} {sizes} on {data.description}, {data.x_train.shape[0]} "
        "samples, full-batch cross-entropy",
        loss=_data.cross_entropy,
        params0=params0,
        args=(jnp.asarray(data.x_train), jnp.asarray(data.y_train)),
        lr_scale=1.0,
        corridor=False,
        apex_time=None,
        parameters=_data.count(params0),
    )
    return problem, warning
