"""`import corridors` is cheap and side-effect free."""

import subprocess
import sys


def test_import_loads_neither_hypothesis_nor_sympy_and_leaves_absl_and_jax_alone():
    code = (
        "import logging, sys\n"
        "before = logging.getLogger('absl').level\n"
        "import corridors\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis loaded'\n"
        "assert 'sympy' not in sys.modules, 'sympy loaded'\n"
        "assert 'corridors.testing' not in sys.modules\n"
        "assert logging.getLogger('absl').level == before, 'absl level changed'\n"
        "import jax._src.xla_bridge as xla_bridge\n"
        "assert not xla_bridge._backends, 'a JAX backend was started'\n"
        "assert corridors.testing.assert_tree_allclose is not None\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
