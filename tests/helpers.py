"""Helpers shared by the tests."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import corridors as cr


def tree_allclose(a, b, *, rtol=1e-7, atol=0.0) -> bool:
    """Same structure, same shapes, and every leaf close."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        jnp.shape(x) == jnp.shape(y) and np.allclose(x, y, rtol=rtol, atol=atol)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def log_log_slope(xs, ys) -> float:
    """Least-squares slope of log(ys) against log(xs): the measured order
    (`corridors.drift_order`)."""
    return cr.drift_order(xs, ys).order


# What a value-dependent check raises when the compiled code runs: EquinoxRuntimeError
# under eqx.filter_jit (and for our own jitted kernels); under a user's jax.jit, JAX
# re-raises the callback's failure as its own error type, carrying the same message.
RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError, ValueError)


def compilations(call) -> int:
    """How many XLA programs `call()` builds: compiled, or fetched from the persistent
    compilation cache that tests/conftest.py turns on (a hit skips the compile)."""
    events = []

    def compiled(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(event)

    def fetched(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(compiled)
    jax.monitoring.register_event_listener(fetched)
    try:
        jax.block_until_ready(call())
    finally:
        jax.monitoring.unregister_event_duration_listener(compiled)
        jax.monitoring.unregister_event_listener(fetched)
    return len(events)
