"""`corridors prove`: verdicts, selection, and a non-zero exit when a proof fails."""

import functools
import json
import os
import pathlib
import subprocess
import sys

import pytest

from corridors.cli import main
from corridors.symbolic.run_all import discover

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


# In-process (a subprocess costs a JAX and SymPy import, ~10 s); the exit code of a
# real process is tested below.
def test_selected_statements_are_proved(tmp_path, capsys):
    arguments = ["prove", "chebyshev", "12", "--json", "--quiet", "--out", tmp_path]
    assert main([str(a) for a in arguments]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    document = json.loads(captured.out)
    assert [r["script"] for r in document["results"]] == [
        "no_wrong_turns.py",
        "chebyshev.py",
    ]  # statement order, whatever the order asked
    for r in document["results"]:
        assert r["proved"] and r["verdict"] == "proved" and r["failures"] == []
        assert r["claim"] and r["seconds"] >= 0
    assert json.loads((tmp_path / "proofs.json").read_text())["results"]
    assert "proved" in (tmp_path / "report.md").read_text()


def test_a_failing_proof_gives_a_non_zero_exit(tmp_path, capsys):
    (tmp_path / "false_claim.py").write_text(FAILING_PROOF)
    (tmp_path / "crashes.py").write_text(CRASHING_PROOF)
    result = corridors_cli("prove", "--proofs-dir", tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FAILED false_claim.py" in result.stderr
    assert "raised RuntimeError: boom" in result.stderr
    assert "0 of 2 proved" in result.stdout

    # Selection, in-process: main's return value is the process's exit code.
    capsys.readouterr()
    assert main(["prove", "--proofs-dir", str(tmp_path), "crashes", "--json"]) == 1
    (only,) = json.loads(capsys.readouterr().out)["results"]
    assert only["script"] == "crashes.py" and not only["proved"]


def test_list_names_every_statement(tmp_path):
    (tmp_path / "false_claim.py").write_text(FAILING_PROOF)
    document = json_output(
        corridors_cli("prove", "--proofs-dir", tmp_path, "--list", "--json")
    )
    assert document == {"scripts": ["false_claim"]}


def _site_packages() -> list[str]:
    """The current environment's package folders (numpy, jax, sympy, ...), without
    any entry that holds corridors itself (the source tree on PYTHONPATH, an
    editable install's target), so only the wheel can provide `corridors`."""
    import site

    folders = [*site.getsitepackages(), site.getusersitepackages()]
    return [
        folder
        for folder in folders
        if pathlib.Path(folder).is_dir()
        and not (pathlib.Path(folder) / "corridors" / "__init__.py").exists()
    ]


@pytest.mark.slow
def test_prove_works_from_an_installed_wheel(tmp_path):
    """Build a wheel, install it (no dependencies: offline) into a fresh venv that
    borrows this environment's packages, and prove two statements from a folder
    that has no proofs/ of its own (about 30 s)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "cwd"
    elsewhere.mkdir()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True)
    # --no-build-isolation: hatchling comes from the test extra, nothing is downloaded.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(root),
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dist),
            "--quiet",
        ]
    )
    (wheel,) = dist.glob("corridors-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ]
    )
    # A .pth file appends the borrowed folders after the venv's own site-packages; the
    # .pth files inside them (an editable install of corridors) are not processed.
    purelib = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    )
    (pathlib.Path(purelib.stdout.strip()) / "borrowed.pth").write_text(
        "\n".join(_site_packages()) + "\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    where = run(
        [python, "-c", "import corridors; print(corridors.__file__)"],
        env=env,
        cwd=elsewhere,
    )
    assert pathlib.Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    command = venv / "bin" / "corridors"  # the console script the wheel installed
    listed = json_output(
        subprocess.run(
            [command, "prove", "--list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=elsewhere,
            check=False,
        )
    )
    shipped = sorted(path.stem for path in discover(root / "proofs"))
    assert listed["scripts"] and sorted(listed["scripts"]) == shipped

    proved = json_output(
        subprocess.run(
            [command, "prove", "chebyshev", "clr_eq3", "--json", "--quiet"],
            capture_output=True,
            text=True,
            env=env,
            cwd=elsewhere,
            check=False,
            timeout=600,
        )
    )
    assert [r["script"] for r in proved["results"]] == ["clr_eq3.py", "chebyshev.py"]
    assert all(r["proved"] and not r["failures"] for r in proved["results"])
