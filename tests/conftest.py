"""Tests run in float64; hypothesis profiles are chosen by CORRIDORS_HYPOTHESIS_PROFILE."""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

# Compilation dominates the first example of every property, so no deadline.
settings.register_profile(
    "ci",
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("CORRIDORS_HYPOTHESIS_PROFILE", "ci"))
