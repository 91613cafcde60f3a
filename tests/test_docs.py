"""Every ```python block of README.md and docs/*.md, and every ```python block in a
function's, class's or method's docstring under src/corridors, runs as a test.

sybil finds the blocks (markdown fences, also inside docstrings, with their line
numbers); each block is one test and runs on its own, in a fresh namespace, the way a
reader pastes it into a new interpreter: under JAX's default float32, unless the
block turns float64 on itself (the README's quickstart does). A block that prints
shows what it prints in a comment on the same statement, and the comment is checked:
it starts with the printed text, or with the same numbers (to 1e-5; after "≈" or "~"
to the digits shown, and "~1e-16" to the order of magnitude).

Module docstrings are overviews, not examples, and are not collected.
"""

import ast
import builtins
import collections
import contextlib
import io
import math
import pathlib
import re
import sys
import tokenize

import jax
import pytest
from sybil import Document
from sybil.document import PythonDocStringDocument
from sybil.parsers.markdown import PythonCodeBlockParser

ROOT = pathlib.Path(__file__).resolve().parents[1]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
SOURCES = sorted((ROOT / "src" / "corridors").glob("**/*.py"))


class _Docstrings(PythonDocStringDocument):
    """The docstrings of a source file, without importing the module (an Example
    must import what it uses) and without the module docstring."""

    def __init__(self, text: str, path: str) -> None:
        Document.__init__(self, text, path)

    @staticmethod
    def extract_docstrings(python_source_code):
        docstrings = PythonDocStringDocument.extract_docstrings(python_source_code)
        if ast.get_docstring(ast.parse(python_source_code)) is not None:
            next(docstrings)  # ast.walk visits the module first: its docstring
        yield from docstrings


def _examples(path: pathlib.Path):
    parser = PythonCodeBlockParser()
    if path.suffix == ".py":
        return list(_Docstrings.parse(str(path), parser))
    return list(Document.parse(str(path), parser))


def _collect():
    for path in [*MARKDOWN, *SOURCES]:
        for example in _examples(path):
            name = f"{path.relative_to(ROOT)}:{example.line}"
            yield pytest.param(path, example.line, id=name)


CASES = list(_collect())


def _prints(source: str) -> list[tuple[range, str | None]]:
    """The lines of each `print(...)` statement and the comment on them, if any."""
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "print"
        ):
            lines = range(node.lineno, node.end_lineno + 1)
            found.append(
                (lines, next((comments[i] for i in lines if i in comments), None))
            )
    return found


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _agrees(printed: str, promised: str) -> bool:
    """Whether a comment shows what was printed (see the module docstring)."""
    printed = printed.strip()
    approximate = promised[:1] in ("≈", "~")
    claim = promised.lstrip("≈~ ")
    if not approximate and claim.startswith(printed):
        return True
    value = re.split(r":\s| = | \(", claim, maxsplit=1)[0]  # before an explanation
    shown, got = NUMBER.findall(value), [float(x) for x in NUMBER.findall(printed)]
    if not shown or len(shown) != len(got):
        return False
    for text, actual in zip(shown, got, strict=True):
        expected = float(text)
        if not approximate:
            ok = math.isclose(actual, expected, rel_tol=1e-5, abs_tol=1e-6)
        elif "e" in text.lower() and expected != 0 and actual != 0:
            ok = abs(math.log10(abs(actual)) - math.log10(abs(expected))) <= 1
        else:
            digits = len(text.split(".")[1]) if "." in text else 0
            ok = abs(actual - expected) <= 0.5 * 10.0**-digits + 1e-9
        if not ok:
            return False
    return True


@contextlib.contextmanager
def _jax_defaults():
    """JAX as a fresh interpreter has it (float32), restored afterwards."""
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", x64)


@pytest.mark.parametrize(("path", "line"), CASES)
def test_snippet_runs(path, line, tmp_path, monkeypatch):
    (example,) = [e for e in _examples(path) if e.line == line]
    prints = _prints(str(example.parsed))
    unshown = [lines.start for lines, comment in prints if comment is None]
    assert not unshown, f"{path.name}:{line}: print without a comment (lines {unshown})"
    # Record what each print statement prints, by its line in the block.
    first_line = example.line + example.parsed.line_offset
    printed = collections.defaultdict(list)

    def recording_print(*values, sep=" ", **options):
        builtins.print(*values, sep=sep, **options)
        printed[sys._getframe(1).f_lineno - first_line].append(
            sep.join(map(str, values))
        )

    example.namespace.clear()
    example.namespace["print"] = recording_print
    monkeypatch.chdir(tmp_path)  # a snippet that writes files writes them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with _jax_defaults():
        example.evaluate()
    for lines, comment in prints:
        outputs = [text for i in lines for text in printed.get(i, [])]
        if len(outputs) == 1:  # a print in a loop or a function may run 0 or n times
            assert _agrees(outputs[0], comment), (
                f"{path.name}:{line + lines.start}: printed {outputs[0]!r}, "
                f"the comment says {comment!r}"
            )


def test_the_collection_sees_the_readme_docs_and_docstrings():
    names = {case.id.split(":")[0] for case in CASES}
    assert "README.md" in names
    assert any(name.startswith("docs/") for name in names)
    assert any(name.startswith("src/corridors/lr/") for name in names)


PACKAGES = [
    "corridors",
    "corridors.lr",
    "corridors.landscapes",
    "corridors.testing",
    "corridors.symbolic",
    "corridors.train",
]


def _public_functions():
    import importlib
    import inspect

    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            function = inspect.unwrap(value) if callable(value) else None
            if inspect.isfunction(function) or inspect.isbuiltin(function):
                yield f"{package}.{name}", inspect.getdoc(value) or ""


def test_every_public_function_has_an_example():
    lacking = {
        name
        for name, doc in _public_functions()
        if "**Example:**" not in doc or "```python" not in doc
    }
    assert not lacking, f"add an **Example:** to these docstrings: {sorted(lacking)}"


TEST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' "
    "&& python -m pytest -n 2"
)


def test_the_readme_test_command_is_what_ci_runs_first():
    assert TEST_COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd ", "export "))
    ]
    assert commands[0] == TEST_COMMAND


@pytest.mark.parametrize(
    ("printed", "comment", "agrees"),
    [
        ("3.616203", "3.616203", True),
        ("3.6162033", "3.616203: the corridor score", True),  # float32's last digit
        ("3.62", "3.616203", False),
        ("1.0007415e-16 3.6162028", "~1e-16, 3.6", True),
        ("2.6e-14", "~1e-16", False),
        ("[5.0000005 2.0000002]", "≈ [5. 2.]", True),
        ("[5.0000005 2.0000002]", "≈ [5. 2. 1.]", False),
        ("1.8027754", "≈ 1.8028 = √13/2", True),
        ("1.81", "≈ 1.8028", False),
        ("True", "True (float32 round-off)", True),
        ("False", "True", False),
        ("(21,)", "(21,): one distance per iterate", True),
    ],
)
def test_a_comment_must_show_what_is_printed(printed, comment, agrees):
    assert _agrees(printed, comment) is agrees
