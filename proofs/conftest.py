"""Proof scripts run in float64 and are importable by name (proofs/ is on sys.path)."""

import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

_HERE = str(pathlib.Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
