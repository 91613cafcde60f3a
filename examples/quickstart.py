"""Quickstart: gradient descent follows the gradient flow in a corridor, and drifts off it elsewhere.

Run: python examples/quickstart.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import corridors as cr

jax.config.update("jax_enable_x64", True)


def cone(theta):
    """A corridor: 2‖θ − c‖ + 1 has H∇L = 0 away from its apex."""
    return 2.0 * jnp.linalg.norm(theta - jnp.array([1.0, -1.0])) + 1.0


def bowl(theta):
    """Not a corridor: a quadratic with A ≠ 0 has H∇L ≠ 0 off its minimizer."""
    return 0.5 * theta @ jnp.array([[3.0, 1.0], [1.0, 2.0]]) @ theta


def main():
    theta0 = jnp.array([4.0, 3.0])
    print(f"{'landscape':<10}{'corridor score':>16}{'GD drift (lr=0.1, 10 steps)':>30}")
    for name, loss in (("cone", cone), ("quadratic", bowl)):
        score = cr.corridor_score(loss, theta0)
        drift = cr.measure_drift(loss, theta0, 0.1, 10).distance[-1]
        print(f"{name:<10}{float(score):>16.2e}{float(drift):>30.2e}")

    lrs = 0.05 / 2.0 ** np.arange(5)
    sweep = cr.sweep_drift(bowl, theta0, lrs, horizon=1.0)
    order = cr.drift_order(lrs, sweep).order
    print(f"quadratic: drift at flow time 1 shrinks like lr^{order:.2f} (theory: lr^1)")
    print("sharpness of the quadratic:", np.asarray(cr.sharpness(bowl, theta0, k=2)))


if __name__ == "__main__":
    main()
