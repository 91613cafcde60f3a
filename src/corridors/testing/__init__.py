"""Property-based verification: hypothesis strategies, assertions and profiles.

Strategies (each documents the guarantee its examples satisfy):
`corridor_problems`, `quadratic_problems`, `explicit_rk_tableaux`, `pytrees`,
`learning_rates`. Assertions (informative failure messages): `assert_tree_allclose`,
`assert_follows_flow`, `assert_drift_order`, `assert_in_corridor`. Hypothesis profiles
`ci` and `thorough`: `load_profile()` picks one from `$CORRIDORS_HYPOTHESIS_PROFILE`.
"""

from ._assertions import (
    assert_drift_order,
    assert_follows_flow,
    assert_in_corridor,
    assert_tree_allclose,
)
from ._problems import corridor_problems, quadratic_problems
from ._profiles import (
    DEFAULT_PROFILE,
    PROFILE_ENV,
    PROFILES,
    load_profile,
    register_profiles,
)
from ._pytrees import learning_rates, pytrees
from ._tableaux import explicit_rk_tableaux

register_profiles(overwrite=False)

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "PROFILE_ENV",
    "assert_drift_order",
    "assert_follows_flow",
    "assert_in_corridor",
    "assert_tree_allclose",
    "corridor_problems",
    "explicit_rk_tableaux",
    "learning_rates",
    "load_profile",
    "pytrees",
    "quadratic_problems",
    "register_profiles",
]
