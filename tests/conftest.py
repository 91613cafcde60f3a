"""Tests run in float64; the hypothesis profile comes from corridors.testing.

`CORRIDORS_HYPOTHESIS_PROFILE=thorough python -m pytest` runs 200 examples per property
instead of the default `ci` profile's 10 derandomized ones.
"""

import jax

jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    # Imported here, after float64 is on, so the library sees it from the start.
    from corridors.testing import load_profile

    load_profile()
