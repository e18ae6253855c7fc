"""The layout rule (docs/tasks.md): nothing outside personlab_tf/tasks/ imports a task package, except the
registry; every task has the same module names for the same concepts."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "personlab_tf"
TASKS_PREFIX = "personlab_tf.tasks"
REGISTRY = "personlab_tf/registry.py"
# The modules every task provides (docs/tasks.md).
TASK_MODULES = {"task.py", "targets.py", "model.py", "losses.py", "decode.py", "detector.py", "oracle.py",
                "evaluation.py"}


def imported_modules(source: str) -> set:
    """The absolute module names a Python source imports (`import a.b`, `from a.b import c` -> a.b and a.b.c)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def task_importers(files: dict) -> list:
    """The core files (path -> source; outside personlab_tf/tasks/, registry excepted) importing a task package."""
    found = []
    for path, source in sorted(files.items()):
        if path.startswith("personlab_tf/tasks/") or path == REGISTRY:
            continue
        if any(name == TASKS_PREFIX or name.startswith(TASKS_PREFIX + ".") for name in imported_modules(source)):
            found.append(path)
    return found


def package_sources() -> dict:
    return {str(path.relative_to(PACKAGE.parent)): path.read_text() for path in PACKAGE.rglob("*.py")}


def test_the_core_imports_no_task():
    sources = package_sources()
    assert task_importers(sources) == []
    assert any(TASKS_PREFIX in name for name in imported_modules(sources[REGISTRY]))  # the registry does


@pytest.mark.parametrize("reversed_import", [
    "from personlab_tf.tasks.parts import part_sets",
    "import personlab_tf.tasks.personlab.decode",
    "from personlab_tf import tasks",
])
def test_a_reversed_import_is_caught(reversed_import):
    sources = package_sources()
    sources["personlab_tf/data/synthetic.py"] += f"\n{reversed_import}\n"
    assert task_importers(sources) == ["personlab_tf/data/synthetic.py"]


def test_every_task_has_the_same_modules():
    for task in ("personlab", "parts"):
        modules = {path.name for path in (PACKAGE / "tasks" / task).glob("*.py")}
        assert TASK_MODULES <= modules, (task, TASK_MODULES - modules)
