"""Hypothesis profiles `ci` and `thorough`, selected by an environment variable."""

import os

from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

from .._checks import InvalidInputError

try:  # the `ci` profile hypothesis registers itself (private; absent in old versions)
    from hypothesis._settings import CI as _HYPOTHESIS_CI
except ImportError:  # pragma: no cover
    _HYPOTHESIS_CI = None

PROFILE_ENV = "CORRIDORS_HYPOTHESIS_PROFILE"
"""The environment variable naming the profile `load_profile()` loads."""

DEFAULT_PROFILE = "ci"

# Compiling dominates the first example of a property, so no deadline anywhere.
_PROFILES = {
    "ci": {
        "max_examples": 10,
        "deadline": None,
        "derandomize": True,
        "database": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    },
    "thorough": {
        "max_examples": 200,
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    },
}
PROFILES = tuple(_PROFILES)
"""The profile names: `ci` (10 examples, derandomized: the same examples every run)
and `thorough` (200 random examples)."""


def _registered(name: str) -> bool:
    """Whether a profile `name` was registered by someone other than hypothesis.

    Hypothesis registers a built-in `ci` profile of its own (100 examples); that one
    does not count, or the suite would run ten times the examples it means to."""
    try:
        profile = settings.get_profile(name)
    except InvalidArgument:
        return False
    return _HYPOTHESIS_CI is None or profile is not _HYPOTHESIS_CI


def register_profiles(*, overwrite: bool = True) -> None:
    """Register the hypothesis profiles `ci` and `thorough`.

    - `ci`: 10 examples per property, derandomized (the same examples on every run,
      no example database), no deadline: fast and reproducible.
    - `thorough`: 200 random examples per property, no deadline.

    Importing `corridors.testing` registers them unless profiles of these names exist
    already (so a project's own `ci` profile wins).

    **Arguments:**

    - `overwrite`: replace existing profiles of the same names.

    **Example:**

    ```python
    from hypothesis import settings
    from corridors.testing import register_profiles

    register_profiles()  # importing corridors.testing did it too, keeping profiles of yours
    ci, thorough = settings.get_profile("ci"), settings.get_profile("thorough")
    print(ci.max_examples, ci.derandomize, thorough.max_examples)  # 10 True 200
    ```
    """
    for name, options in _PROFILES.items():
        if overwrite or not _registered(name):
            settings.register_profile(name, **options)


def load_profile(name: str | None = None) -> str:
    """Load a hypothesis profile: `name`, else `$CORRIDORS_HYPOTHESIS_PROFILE`, else `ci`.

    Call it once from a `conftest.py`. Profiles registered by the project (any name)
    can be selected too.

    **Arguments:**

    - `name`: the profile to load; `None` reads the environment variable.

    **Returns:**

    The name of the profile loaded.

    **Example:**

    ```python
    from hypothesis import settings
    from corridors.testing import load_profile

    name = load_profile()  # in conftest.py: $CORRIDORS_HYPOTHESIS_PROFILE, else "ci"
    print(settings.default.max_examples == settings.get_profile(name).max_examples)  # True
    ```
    """
    register_profiles(overwrite=False)
    if name is None:
        name = os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if not _registered(name):
        raise InvalidInputError(
            f"load_profile: no hypothesis profile {name!r} (set by `name` or "
            f"${PROFILE_ENV}); corridors registers {list(PROFILES)}."
        )
    settings.load_profile(name)
    return name
