"""Every proof script proves its statement (one test per statement).

The scripts are also run as programs (exit code 0) by `python -m corridors.symbolic.run_all`.
"""

import importlib
import pathlib

import pytest

from corridors.symbolic import Certificate
from corridors.symbolic.run_all import discover

SCRIPTS = [path.stem for path in discover(pathlib.Path(__file__).parent)]


@pytest.mark.parametrize("name", SCRIPTS)
def test_proof(name):
    module = importlib.import_module(name)
    certificate = module.prove()
    assert isinstance(certificate, Certificate)
    assert certificate.verdict, "\n".join(certificate.failures())


@pytest.mark.slow
def test_runge_kutta_full_jets():
    """Elementary differentials of order 5 in dimension 4 too (about 20 s)."""
    certificate = importlib.import_module("runge_kutta").prove(full=True)
    assert certificate.verdict, "\n".join(certificate.failures())


def test_every_statement_has_a_script():
    numbers = sorted(importlib.import_module(name).STATEMENT for name in SCRIPTS)
    assert numbers == list(range(1, 15))
