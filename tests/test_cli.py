import subprocess
import sys

import corridors


def run(*arguments):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from corridors.cli import main; sys.exit(main())",
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_version_flag_prints_the_package_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"corridors {corridors.__version__}"


def test_unknown_flag_is_a_one_line_error_with_exit_code_2():
    result = run("--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr
