"""Learning rates from geometry: Polyak-type optax transforms, Chebyshev/fractal and
silver step-size schedules, and step sizes from path geometry (RSI/EB)."""

from ._chebyshev import (
    chebyshev_error_bound,
    chebyshev_schedule,
    chebyshev_steps,
    fractal_permutation,
)
from ._polyak import (
    HazanKakadeState,
    PolyakState,
    clr,
    hazan_kakade,
    polyak,
    sps_max,
)
from ._rsi_eb import measure_rsi_eb, rsi_eb_schedule
from ._silver import silver_rate, silver_schedule, silver_steps

__all__ = [
    "HazanKakadeState",
    "PolyakState",
    "chebyshev_error_bound",
    "chebyshev_schedule",
    "chebyshev_steps",
    "clr",
    "fractal_permutation",
    "hazan_kakade",
    "measure_rsi_eb",
    "polyak",
    "rsi_eb_schedule",
    "silver_rate",
    "silver_schedule",
    "silver_steps",
    "sps_max",
]
