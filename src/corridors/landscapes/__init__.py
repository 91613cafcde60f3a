"""Analytic loss landscapes with known geometry and, where one exists, exact flow.

Every landscape is an `equinox.Module` with `loss(params)` (also `landscape(params)`),
`in_corridor(params)` and `minimum`; those with a closed-form gradient flow also have
`exact_flow(params0, t)`:

- corridors: `Linear`, `Cone`, `ConcaveCone`, `CylinderCone`, `GluedCorridor`;
- not corridors, closed-form flow: `Quadratic`, `RuledSaddle`;
- not corridors, no closed-form flow: `Rosenbrock`, `DeepLinear`, `MLPRegression`.
"""

from ._base import (
    AbstractExactLandscape,
    AbstractLandscape,
    Minimum,
    NoExactFlowError,
)
from ._cone import ConcaveCone, Cone
from ._cylinder import CylinderCone
from ._deep_linear import DeepLinear
from ._glued import GluedCorridor
from ._linear import Linear
from ._linear_regression import LinearRegression
from ._mlp import MLPRegression
from ._quadratic import Quadratic
from ._rosenbrock import Rosenbrock
from ._saddle import RuledSaddle

__all__ = [
    "AbstractExactLandscape",
    "AbstractLandscape",
    "ConcaveCone",
    "Cone",
    "CylinderCone",
    "DeepLinear",
    "GluedCorridor",
    "Linear",
    "LinearRegression",
    "MLPRegression",
    "Minimum",
    "NoExactFlowError",
    "Quadratic",
    "Rosenbrock",
    "RuledSaddle",
]
