"""Tests run in float64; the hypothesis profile comes from corridors.testing.

`CORRIDORS_HYPOTHESIS_PROFILE=thorough python -m pytest` runs 200 examples per property
instead of the default `ci` profile's 10 derandomized ones. Compiled programs are
cached on disk (see below); `JAX_COMPILATION_CACHE_DIR=` set to another folder moves it.
"""

import os
import pathlib
import tempfile

# Programs compiled once are reused from disk by the other xdist worker, by the
# subprocesses the CLI and training tests start, and by the next run (XLA compiling
# the same small programs again is a large part of the suite's time). The variables
# reach the subprocesses; the config reaches this process even if a plugin imported
# JAX first. An outer setting wins.
_CACHE = pathlib.Path(tempfile.gettempdir()) / f"corridors-jax-cache-{os.getuid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)
jax.config.update(
    "jax_persistent_cache_min_entry_size_bytes",
    int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]),
)


# The default suite compiles many small programs and runs each briefly, so LLVM's
# optimizations cost more time than they save (CPU time of test_train_measure.py
# −21%, test_references_central.py −25%); the slow tests run long programs, where they
# pay (the central-flow acceptance test takes 1.8× as long without them). Results
# differ from an optimized build by rounding only (≤ 1 ulp in a flow, an HVP, GD and
# the sharpness, float32 and float64), far inside every tolerance here; what is
# compared bit for bit is always two runs made under the same flags.
_QUICK_COMPILE = (
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)


def pytest_configure(config):
    # Set before the first array is made (collection), when XLA reads its flags;
    # subprocesses the tests start inherit them.
    selects_slow = "slow" in (config.option.markexpr or "").replace("not slow", "")
    if not selects_slow:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} {_QUICK_COMPILE}".strip()
    # Imported here, after float64 is on, so the library sees it from the start.
    from corridors.testing import load_profile

    load_profile()
