"""Symbolic layer: sympy calculus of losses, flows and steps as series in the step size,
corridor jets, the lambdify bridge to JAX, and proof certificates.

The proof scripts in `proofs/` are built from these pieces; run them all with
`python -m corridors.symbolic.run_all`.
"""

from ._bridge import to_jax, to_loss
from ._calculus import (
    coordinates,
    directional_derivative,
    generic_function,
    gradient,
    hessian,
    hessian_gradient,
    instantiate,
    sample_function,
    third_derivative,
)
from ._certificate import (
    Certificate,
    Falsification,
    Identity,
    NumericCheck,
    Proof,
    run_proof,
)
from ._jets import CorridorJet, rooted_trees, tree_label, tree_order
from ._series import (
    coefficient,
    flow_series,
    gd_step,
    lie_derivative,
    rk_step_series,
    taylor_shift,
    truncate,
)
from ._tableaux import SymbolicTableau, butcher_tableau, named_tableau, symbolic_tableau
from ._zero import is_zero

__all__ = [
    "Certificate",
    "CorridorJet",
    "Falsification",
    "Identity",
    "NumericCheck",
    "Proof",
    "SymbolicTableau",
    "butcher_tableau",
    "coefficient",
    "coordinates",
    "directional_derivative",
    "flow_series",
    "gd_step",
    "generic_function",
    "gradient",
    "hessian",
    "hessian_gradient",
    "instantiate",
    "is_zero",
    "lie_derivative",
    "named_tableau",
    "rk_step_series",
    "rooted_trees",
    "run_proof",
    "sample_function",
    "symbolic_tableau",
    "taylor_shift",
    "third_derivative",
    "to_jax",
    "to_loss",
    "tree_label",
    "tree_order",
    "truncate",
]
