"""The reference flows of gradient descent by name, for `measure_drift`, `sweep_drift`
and the testing kit: "flow", "modified" (order 1), "modified2", "modified3",
"principal", "central"."""

from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

from ._flows import gradient_field, solve
from ._geometry import tree_norm
from ._modified import modified_field_of_order
from ._principal import principal_field
from ._results import RESULTS

REFERENCES = ("flow", "modified", "modified2", "modified3", "principal", "central")


def reference_system(name: str, loss: Callable, params0: PyTree, args: tuple):
    """(field, y0, params_of, velocity_of, solver) of a named reference of GD.

    The field is (t, y, lr) ↦ y'; `params_of(y)` is the params pytree of a state and
    `velocity_of(y')` its velocity (the real part, for the principal flow).
    """
    if name == "central":
        from ._central import central_system

        return central_system(loss, params0, args)
    identity = lambda tree: tree  # noqa: E731
    if name == "principal":
        flat0, unravel = ravel_pytree(params0)
        field = principal_field(loss, args, unravel, rank=None, order=3)
        first = lambda pair: pair[0]  # noqa: E731
        state0 = (flat0, jnp.zeros_like(flat0))
        return field, state0, lambda y: unravel(y[0]), first, diffrax.Dopri8()
    if name == "flow":
        field = gradient_field(loss, args)
    else:
        order = 1 if name == "modified" else int(name[-1])
        field = modified_field_of_order(loss, args, order)
    return field, params0, identity, identity, diffrax.Dopri8()


def reference_path(
    name: str,
    loss: Callable,
    params0: PyTree,
    ts: Array,
    lr: Array,
    args: tuple,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
) -> tuple[PyTree, Array, RESULTS]:
    """The named reference flow of GD at step `lr`: (params at `ts`, stacked; its path
    length ∫‖φ'‖dt at `ts`; the solve's status).

    "flow" is the gradient flow, "modified"/"modified2"/"modified3" the modified flows
    of order 1/2/3, "principal" the principal flow's real part (all eigenpairs: small
    models), "central" the central flow (k = 2, τ = lr/2). Traceable: call it inside a
    jitted kernel, and tie the status on with `finish`.
    """
    field, state0, params_of, velocity_of, solver = reference_system(
        name, loss, params0, args
    )

    def augmented(t, state, lr):
        velocity = field(t, state[0], lr)
        return velocity, tree_norm(velocity_of(velocity))

    solved = solve(
        augmented, (state0, jnp.zeros((), ts.dtype)), ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=False,
    )  # fmt: skip
    states, length = solved.ys
    return jax.vmap(params_of)(states), length, solved.result
