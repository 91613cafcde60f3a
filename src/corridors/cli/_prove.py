"""`corridors prove`: run the symbolic proof suite (proofs/*.py) and print, for each
statement, its claim, the verdict and the time taken. The exit code is 0 only when
every selected statement is proved (1 otherwise).

Built on `corridors.symbolic.run_all`: the same discovery, the same certificates.
"""

import argparse
import pathlib
import re
import time

from ._options import UsageError, add_common_flags, existing_folder

NAME = "prove"
HELP = "run the symbolic proofs: statement, verdict, seconds; exit 1 on failure"
EXAMPLE = """\
examples:
  corridors prove                          # every statement (about a minute)
  corridors prove lemma_2_8 appendix_c     # selected scripts (file names in proofs/)
  corridors prove 9 13                     # or statement numbers (proofs/README.md)
  corridors prove --list                   # what there is
  corridors prove --proofs-dir my_proofs --json --out proof-report

A script is a file in the proofs folder exposing `prove() -> Certificate`."""

_STATEMENT = re.compile(r"^STATEMENT\s*=\s*(\d+)", re.MULTILINE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="STATEMENT",
        help="proof scripts (e.g. lemma_2_8) or statement numbers (default: all)",
    )
    parser.add_argument(
        "--proofs-dir",
        type=existing_folder,
        default=None,
        metavar="DIR",
        help="the proofs folder (default: ./proofs, else the scripts installed with "
        "corridors)",
    )
    parser.add_argument(
        "--full", action="store_true", help="include the slow extras of each proof"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the statements and exit"
    )
    add_common_flags(
        parser,
        out=None,
        out_help="also write proofs.json and report.md into DIR (default: nothing)",
        seed=False,
    )


def _number(path: pathlib.Path) -> int | None:
    match = _STATEMENT.search(path.read_text(encoding="utf-8"))
    return int(match.group(1)) if match else None


def _select(paths: list[pathlib.Path], names: list[str]) -> list[pathlib.Path]:
    """Scripts by file stem (with or without .py) or statement number, in statement
    order; every script when `names` is empty."""
    numbered = [(_number(path), path) for path in paths]
    numbered.sort(key=lambda item: (item[0] is None, item[0] or 0, item[1].stem))
    if not names:
        return [path for _, path in numbered]
    by_stem = {path.stem: path for path in paths}
    by_number = {str(number): path for number, path in numbered if number is not None}
    chosen, unknown = [], []
    for name in names:
        stem = name.removesuffix(".py")
        path = by_stem.get(stem) or by_number.get(stem)
        if path is None:
            unknown.append(name)
        elif path not in chosen:
            chosen.append(path)
    if unknown:
        raise UsageError(
            f"unknown statement(s) {', '.join(unknown)}; choose from "
            f"{', '.join(sorted(by_stem))} or numbers {', '.join(sorted(by_number, key=int))}."
        )
    order = [path for _, path in numbered]
    return sorted(chosen, key=order.index)


def run(options: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from rich.text import Text

    from corridors.symbolic.run_all import discover, run_all

    from ._report import header, markdown_table, write_json
    from ._terminal import Terminal

    terminal = Terminal(quiet=options.quiet, json_mode=options.json)
    paths = discover(options.proofs_dir)
    if not paths:
        raise UsageError(f"no proof scripts in {options.proofs_dir or 'proofs/'}.")
    selected = _select(paths, options.names)
    if options.list:
        rows = [[_number(path) or "—", path.stem] for path in selected]
        terminal.table("proof scripts", ["#", "script"], rows)
        terminal.emit_json({"scripts": [path.stem for path in selected]})
        return 0
    began = time.perf_counter()
    results = []
    with terminal.progress(len(selected), "proving") as stage:
        for path in selected:
            stage(f"proving {path.stem}")
            (_, certificate), *_ = run_all(path.parent, [path.stem], full=options.full)
            results.append(
                {
                    "number": _number(path),
                    "script": path.name,
                    "statement": certificate.name,
                    "claim": certificate.statement,
                    "method": certificate.method,
                    "verdict": "proved" if certificate.verdict else "FAILED",
                    "proved": certificate.verdict,
                    "seconds": certificate.seconds,
                    "failures": certificate.failures(),
                }
            )
    seconds = time.perf_counter() - began
    failed = [result for result in results if not result["proved"]]
    rows = [
        [
            r["number"] or "—",
            r["statement"],
            r["claim"],
            Text("proved", style="green")
            if r["proved"]
            else Text("FAILED", style="red"),
            f"{r['seconds']:.1f}",
        ]
        for r in results
    ]
    terminal.table(
        f"corridors prove: {len(results) - len(failed)} of {len(results)} proved "
        f"in {seconds:.0f} s",
        ["#", "statement", "claim", "verdict", "seconds"],
        rows,
        right=["seconds"],
    )
    document = header("corridors.prove", seconds=seconds, results=results)
    if options.out is not None:
        write_json(options.out / "proofs.json", document)
        table = markdown_table(
            ["#", "statement", "claim", "verdict", "seconds", "failures"],
            [
                [
                    r["number"] or "—",
                    r["statement"],
                    r["claim"].replace("|", "\\|"),
                    r["verdict"],
                    f"{r['seconds']:.1f}",
                    "; ".join(r["failures"]).replace("|", "\\|"),
                ]
                for r in results
            ],
        )
        (options.out / "report.md").write_text(
            f"# corridors prove\n\n{table}\n", encoding="utf-8"
        )
    terminal.emit_json(document)
    for result in failed:  # on stderr even with --quiet: the reason for exit code 1
        terminal.err.print(
            f"[red]FAILED[/red] {result['script']} ({result['statement']}): "
            + "; ".join(result["failures"]),
            highlight=False,
        )
    return 1 if failed else 0
