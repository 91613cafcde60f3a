"""Every ```python block of README.md and docs/*.md, and every ```python block in a
function's, class's or method's docstring under src/corridors, runs as a test.

sybil finds the blocks (markdown fences, also inside docstrings, with their line
numbers); each block is one test and runs on its own, in a fresh namespace, the way a
reader pastes it into a new interpreter: under JAX's default float32, unless the
block turns float64 on itself (the README's quickstart does). A block that prints
shows what it prints in a comment on the same statement.

Module docstrings are overviews, not examples, and are not collected.
"""

import ast
import contextlib
import io
import pathlib
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


def _unshown_prints(source: str) -> list[int]:
    """Lines of `print(...)` statements that carry no comment."""
    commented = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "print"
        and not commented.intersection(range(node.lineno, node.end_lineno + 1))
    ]


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
    source = str(example.parsed)
    assert not _unshown_prints(source), (
        f"{path.name}:{line}: print without the printed value in a comment "
        f"(block lines {_unshown_prints(source)})"
    )
    example.namespace.clear()
    monkeypatch.chdir(tmp_path)  # a snippet that writes files writes them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with _jax_defaults():
        example.evaluate()


def test_the_collection_sees_the_readme_docs_and_docstrings():
    names = {case.id.split(":")[0] for case in CASES}
    assert "README.md" in names
    assert any(name.startswith("docs/") for name in names)
    assert any(name.startswith("src/corridors/lr/") for name in names)


# Public functions whose docstring has no **Example:** yet. Shrink this list as
# Examples are added (the test fails on a name that has gained one, too).
LACKING_AN_EXAMPLE = {
    "corridors.corridor_score",
    "corridors.gd",
    "corridors.gradient_flow",
    "corridors.hvp",
    "corridors.measure_drift",
    "corridors.momentum",
    "corridors.predicted_step_drift",
    "corridors.runge_kutta",
    "corridors.sgd",
    "corridors.sgd_regularizers",
    "corridors.sharpness",
    "corridors.sweep_drift",
    "corridors.testing.assert_drift_order",
    "corridors.testing.assert_follows_flow",
    "corridors.testing.assert_in_corridor",
    "corridors.testing.assert_tree_allclose",
    "corridors.testing.corridor_problems",
    "corridors.testing.explicit_rk_tableaux",
    "corridors.testing.learning_rates",
    "corridors.testing.load_profile",
    "corridors.testing.pytrees",
    "corridors.testing.quadratic_problems",
    "corridors.testing.register_profiles",
    "corridors.train.add_train_arguments",
    "corridors.train.build_model",
    "corridors.train.cifar10",
    "corridors.train.count_parameters",
    "corridors.train.data_mesh",
    "corridors.train.digits",
    "corridors.train.imagenet",
    "corridors.train.load_dataset",
    "corridors.train.make_measure_loss",
    "corridors.train.make_network",
    "corridors.train.make_optimizer",
    "corridors.train.plot_runs",
    "corridors.train.read_metrics",
    "corridors.train.run",
    "corridors.train.synthetic",
}
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
    assert not lacking - LACKING_AN_EXAMPLE, "add an **Example:** to these docstrings"
    assert not LACKING_AN_EXAMPLE - lacking, (
        "these have one now: drop them from the list"
    )


TEST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' "
    "&& python -m pytest -n 2"
)


def test_the_readme_test_command_is_what_ci_runs_first():
    assert TEST_COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands[0] == TEST_COMMAND
