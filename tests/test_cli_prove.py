"""`corridors prove`: verdicts, selection, and a non-zero exit when a proof fails."""

import json

from .test_cli import corridors_cli, json_output

FAILING_PROOF = '''
"""A deliberately false statement: 1 + 1 = 3."""
import sympy as sp
from corridors.symbolic import Certificate, Falsification, Identity, NumericCheck

STATEMENT = 1


def prove():
    residual = sp.Integer(1) + 1 - 3
    return Certificate(
        name="False claim", statement="1 + 1 = 3", method="arithmetic",
        assumptions=(),
        identities=(Identity("1 + 1 - 3 = 0", residual, residual == 0, "failed"),),
        checks=(NumericCheck("float", 1.0, 0.0, False),),
        falsifications=(Falsification("none", "-", True),),
        seconds=0.0,
    )
'''

CRASHING_PROOF = """
STATEMENT = 2


def prove():
    raise RuntimeError("boom")
"""


def test_selected_statements_are_proved(tmp_path):
    result = corridors_cli(
        "prove", "chebyshev", "12", "--json", "--quiet", "--out", tmp_path
    )
    document = json_output(result)
    assert [r["script"] for r in document["results"]] == [
        "no_wrong_turns.py",
        "chebyshev.py",
    ]  # statement order, whatever the order asked
    for r in document["results"]:
        assert r["proved"] and r["verdict"] == "proved" and r["failures"] == []
        assert r["claim"] and r["seconds"] >= 0
    assert json.loads((tmp_path / "proofs.json").read_text())["results"]
    assert "proved" in (tmp_path / "report.md").read_text()


def test_a_failing_proof_gives_a_non_zero_exit(tmp_path):
    (tmp_path / "false_claim.py").write_text(FAILING_PROOF)
    (tmp_path / "crashes.py").write_text(CRASHING_PROOF)
    result = corridors_cli("prove", "--proofs-dir", tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FAILED false_claim.py" in result.stderr
    assert "raised RuntimeError: boom" in result.stderr
    assert "0 of 2 proved" in result.stdout

    selected = corridors_cli("prove", "--proofs-dir", tmp_path, "crashes", "--json")
    assert selected.returncode == 1
    (only,) = json.loads(selected.stdout)["results"]
    assert only["script"] == "crashes.py" and not only["proved"]


def test_list_names_every_statement(tmp_path):
    (tmp_path / "false_claim.py").write_text(FAILING_PROOF)
    document = json_output(
        corridors_cli("prove", "--proofs-dir", tmp_path, "--list", "--json")
    )
    assert document == {"scripts": ["false_claim"]}
