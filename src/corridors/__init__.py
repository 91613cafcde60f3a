"""corridors: where gradient descent and gradient flow agree, and how far they drift."""

import importlib

from . import landscapes, lr, train
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
from ._lanczos import Sharpness
from ._methods import DriftOrder, MethodInfo, drift_order, matched_times, method_info
from ._modified import modified_flow
from ._monitor import Monitor, MonitorRecord
from ._optimizers import optimizer_path
from ._paths import path_geometry
from ._principal import PrincipalFlow, principal_flow
from ._results import RESULTS
from ._sde import Paths, sgd_sde
from ._sgd_paths import sgd_paths
from ._spectrum import (
    HessianDensity,
    HessianTrace,
    block_sharpness,
    hessian_density,
    hessian_trace,
)
from ._step_drift import StepDrift, step_drift
from ._steppers import gd, momentum, runge_kutta, sgd
from ._weak_error import WeakError, weak_error

__version__ = "0.1.0"

__all__ = [
    "RESULTS",
    "CentralFlow",
    "Drift",
    "DriftOrder",
    "Flow",
    "HessianDensity",
    "HessianTrace",
    "InvalidInputError",
    "MethodInfo",
    "Monitor",
    "MonitorRecord",
    "Paths",
    "PrincipalFlow",
    "SGDRegularizers",
    "Sharpness",
    "StepDrift",
    "SweepDrift",
    "WeakError",
    "block_sharpness",
    "central_flow",
    "corridor_score",
    "drift_order",
    "gd",
    "gradient_flow",
    "hessian_density",
    "hessian_trace",
    "hvp",
    "landscapes",
    "lr",
    "matched_times",
    "measure_drift",
    "method_info",
    "modified_flow",
    "momentum",
    "optimizer_path",
    "path_geometry",
    "predicted_step_drift",
    "principal_flow",
    "runge_kutta",
    "sgd",
    "sgd_paths",
    "sgd_regularizers",
    "sgd_sde",
    "sharpness",
    "step_drift",
    "sweep_drift",
    "symbolic",
    "testing",
    "train",
    "weak_error",
]


def __getattr__(name: str):
    # Loaded on first use: corridors.symbolic imports sympy (about half a second);
    # corridors.testing imports hypothesis and registers its profiles.
    if name in ("symbolic", "testing"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'corridors' has no attribute {name!r}")
