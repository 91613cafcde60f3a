"""Run every proof script and print a table: statement, method, verdict, seconds.

    python -m corridors.symbolic.run_all [--proofs DIR] [--full] [--verbose] [NAME ...]

The scripts live in the repository's `proofs/` folder (one `prove() -> Certificate`
per statement), which the wheel ships as `corridors/proofs/`. The exit code is 0 only
when every selected statement is proved.
"""

import argparse
import importlib.util
import inspect
import pathlib
import sys
import time
import traceback
from collections.abc import Sequence

from .._checks import InvalidInputError
from ._certificate import Certificate, Identity

_SKIP_PREFIXES = ("test_", "_")
_SKIP_NAMES = ("conftest.py",)


def proofs_directory(directory: str | pathlib.Path | None = None) -> pathlib.Path:
    """The folder holding the proof scripts.

    **Arguments:**

    - `directory`: an explicit folder; default: `./proofs` if it exists, else the
      scripts shipped with the package (`corridors/proofs/` in an installed wheel),
      else the `proofs/` folder of the source checkout of a development install.

    **Returns:**

    The folder as a `pathlib.Path`.

    **Example:**

    ```python
    from corridors.symbolic.run_all import proofs_directory
    print((proofs_directory() / "lemma_2_8.py").is_file())  # True
    ```
    """
    if directory is not None:
        path = pathlib.Path(directory)
        if not path.is_dir():
            raise InvalidInputError(f"run_all: `directory` {path} is not a folder.")
        return path
    package = pathlib.Path(__file__).resolve().parents[1]
    candidates = [
        pathlib.Path.cwd() / "proofs",
        package / "proofs",  # a wheel: hatch force-includes proofs/ there
        package.parents[1] / "proofs",  # a checkout: src/corridors -> proofs/
    ]
    for path in candidates:
        if path.is_dir():
            return path
    raise InvalidInputError(
        "run_all: no `proofs/` folder found in the current directory, the installed "
        "package or the source checkout; pass `--proofs DIR`."
    )


def discover(directory: str | pathlib.Path | None = None) -> list[pathlib.Path]:
    """The proof scripts in `directory` (see `proofs_directory`), sorted by name.

    **Example:**

    ```python
    from corridors.symbolic.run_all import discover
    print("lemma_2_8" in [path.stem for path in discover()])  # True
    ```
    """
    folder = proofs_directory(directory)
    return sorted(
        path
        for path in folder.glob("*.py")
        if not path.name.startswith(_SKIP_PREFIXES) and path.name not in _SKIP_NAMES
    )


def _load(path: pathlib.Path):
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(path.stem, module)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a script that does not even import: say which
        if sys.modules.get(path.stem) is module:
            del sys.modules[path.stem]
        raise InvalidInputError(
            f"run_all: the proof script {path} cannot be loaded "
            f"({type(error).__name__}: {error})."
        ) from error
    return module


def _failed(name: str, error: BaseException, seconds: float) -> Certificate:
    """A certificate recording that a script crashed (its verdict is False)."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return Certificate(
        name=name,
        statement="(the script raised an exception)",
        method="-",
        assumptions=(),
        identities=(Identity(f"raised {text}", None, False, "failed"),),
        checks=(),
        falsifications=(),
        seconds=seconds,
    )


def run_all(
    directory: str | pathlib.Path | None = None,
    names: Sequence[str] | None = None,
    *,
    full: bool = False,
) -> list[tuple[str, Certificate]]:
    """Run the proof scripts and collect their certificates.

    **Arguments:**

    - `directory`: the proofs folder (default: see `proofs_directory`).
    - `names`: script names (file stems) to run; default all.
    - `full`: pass `full=True` to scripts whose `prove` accepts it (slow extras).

    **Returns:**

    `(script name, certificate)` pairs, in statement order. A script that raises
    gives a certificate whose verdict is `False`.

    **Example:**

    ```python
    import jax
    jax.config.update("jax_enable_x64", True)  # the cross-checks run in float64
    from corridors.symbolic.run_all import run_all
    ((name, certificate),) = run_all(names=["chebyshev"])
    print(name, certificate.verdict)  # chebyshev True
    ```
    """
    paths = discover(directory)
    if names:
        known = {path.stem: path for path in paths}
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise InvalidInputError(
                f"run_all: unknown proof script(s) {unknown}; available: {sorted(known)}."
            )
        paths = [known[name] for name in names]
    modules = [(path.stem, _load(path)) for path in paths]
    modules.sort(key=lambda item: (getattr(item[1], "STATEMENT", 1_000), item[0]))
    results = []
    for name, module in modules:
        start = time.perf_counter()
        try:
            prove = module.prove
            accepts_full = "full" in inspect.signature(prove).parameters
            certificate = prove(full=full) if accepts_full else prove()
        except Exception as error:  # a crashed proof is reported, not fatal
            certificate = _failed(name, error, time.perf_counter() - start)
        results.append((name, certificate))
    return results


def _print_table(results: list[tuple[str, Certificate]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency; plain text keeps this usable anyway
        for name, c in results:
            verdict = "proved" if c.verdict else "FAILED"
            print(
                f"{c.name:32s} {name:20s} {verdict:7s} {c.seconds:6.1f} s  {c.method}"
            )
        return
    table = Table(title="corridors proofs")
    for column in ("statement", "script", "method", "verdict", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for name, c in results:
        table.add_row(
            c.name,
            f"{name}.py",
            c.method,
            "[green]proved[/green]" if c.verdict else "[red]FAILED[/red]",
            f"{c.seconds:.1f}",
        )
    console = Console()
    if not console.is_terminal:  # a log or a pipe: do not squeeze the table into 80
        console = Console(width=200)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0: everything proved)."""
    parser = argparse.ArgumentParser(
        prog="python -m corridors.symbolic.run_all", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", help="proof scripts to run (default: all)")
    parser.add_argument("--proofs", default=None, help="the proofs folder")
    parser.add_argument("--full", action="store_true", help="include slow extras")
    parser.add_argument(
        "--verbose", action="store_true", help="print every certificate in full"
    )
    options = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    results = run_all(options.proofs, options.names or None, full=options.full)
    if options.verbose:
        for _, certificate in results:
            print(certificate.report(), end="\n\n")
    _print_table(results)
    failed = [name for name, c in results if not c.verdict]
    for name, c in results:
        if not c.verdict:
            print(f"{name}: " + "; ".join(c.failures()))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
