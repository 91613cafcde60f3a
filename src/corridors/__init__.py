"""corridors: where gradient descent and gradient flow agree, and how far they drift."""

import importlib

from . import landscapes, lr, testing, train
from ._central import CentralFlow, central_flow
from ._checks import InvalidInputError
from ._drift import (
    Drift,
    SGDRegularizers,
    SweepDrift,
    measure_drift,
    sgd_regularizers,
    sweep_drift,
)
from ._flows import Flow, gradient_flow
from ._geometry import corridor_score, hvp, predicted_step_drift, sharpness
from ._methods import DriftOrder, MethodInfo, drift_order, matched_times, method_info
from ._modified import modified_flow
from ._paths import path_geometry
from ._principal import PrincipalFlow, principal_flow
from ._results import RESULTS
from ._steppers import gd, momentum, runge_kutta, sgd

__version__ = "0.1.0"

__all__ = [
    "RESULTS",
    "CentralFlow",
    "Drift",
    "DriftOrder",
    "Flow",
    "InvalidInputError",
    "MethodInfo",
    "PrincipalFlow",
    "SGDRegularizers",
    "SweepDrift",
    "central_flow",
    "corridor_score",
    "drift_order",
    "gd",
    "gradient_flow",
    "hvp",
    "landscapes",
    "lr",
    "matched_times",
    "measure_drift",
    "method_info",
    "modified_flow",
    "momentum",
    "path_geometry",
    "predicted_step_drift",
    "principal_flow",
    "runge_kutta",
    "sgd",
    "sgd_regularizers",
    "sharpness",
    "sweep_drift",
    "symbolic",
    "testing",
    "train",
]


def __getattr__(name: str):
    # sympy takes about half a second to import: load corridors.symbolic on first use.
    if name == "symbolic":
        return importlib.import_module(".symbolic", __name__)
    raise AttributeError(f"module 'corridors' has no attribute {name!r}")
