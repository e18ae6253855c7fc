"""Type hints on the package's public API: at least 95 % of the public functions and methods under personlab_tf/
are fully annotated (every parameter but self/cls, *args and **kwargs included, and the return; `__init__` needs no
return annotation).

Public: a module-level function or a public class's method whose name does not start with `_`, and a public class's
`__init__`. Not public: other dunder methods, functions nested inside functions (and everything defined inside a
function), methods of private classes. Dataclass-style classes count only the methods they write out."""

import ast
from pathlib import Path
from typing import List, Tuple, Union

PACKAGE = Path(__file__).resolve().parents[1] / "personlab_tf"
THRESHOLD = 0.95
SHOWN = 30

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def _is_public(name: str) -> bool:
    return name == "__init__" or not name.startswith("_")


def _is_staticmethod(node: FunctionNode) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def _fully_annotated(node: FunctionNode, is_method: bool) -> bool:
    args = node.args
    positional = args.posonlyargs + args.args
    if is_method and not _is_staticmethod(node) and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]  # the implicit instance or class
    params = positional + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a is not None]
    if any(a.annotation is None for a in params):
        return False
    return node.name == "__init__" and is_method or node.returns is not None


def _public_functions(body: list, prefix: str, in_class: bool) -> List[Tuple[FunctionNode, str, bool]]:
    """(node, qualified name, is method) of the public functions in a module's or a public class's body; looks
    into module-level `if`/`try` blocks, never into functions."""
    found = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _is_public(node.name) and (in_class or node.name != "__init__"):
                found.append((node, prefix + node.name, in_class))
        elif isinstance(node, ast.ClassDef):
            if not node.name.startswith("_"):
                found += _public_functions(node.body, f"{prefix}{node.name}.", True)
        elif isinstance(node, (ast.If, ast.Try)):
            blocks = [node.body, node.orelse] + ([node.finalbody] + [h.body for h in node.handlers]
                                                 if isinstance(node, ast.Try) else [])
            for block in blocks:
                found += _public_functions(block, prefix, in_class)
    return found


def count_annotations(source: str, path: str = "<string>") -> Tuple[int, int, List[str]]:
    """(fully annotated public functions, public functions, `path:line name` of each one not fully annotated)."""
    functions = _public_functions(ast.parse(source).body, "", False)
    missing = [f"{path}:{node.lineno} {name}" for node, name, is_method in functions
               if not _fully_annotated(node, is_method)]
    return len(functions) - len(missing), len(functions), missing


def package_annotations() -> Tuple[int, int, List[str]]:
    annotated, total, missing = 0, 0, []
    root = PACKAGE.parent
    for path in sorted(PACKAGE.rglob("*.py")):
        good, count, lines = count_annotations(path.read_text(), str(path.relative_to(root)))
        annotated, total, missing = annotated + good, total + count, missing + lines
    return annotated, total, missing


HAND_MADE = '''
from typing import Any


def annotated(x: int, *args: Any, y: str = "", **kwargs: Any) -> int:
    def nested(z):
        return z
    return x


def no_return(x: int):
    return x


def _private(x):
    return x


class Public:
    def __init__(self, x: int):
        self.x = x

    def method(self, y):
        return y

    @staticmethod
    def static(self) -> int:
        return 0

    def __len__(self):
        return 1

    def _helper(self, y):
        return y


class _Private:
    def method(self, y):
        return y
'''


def test_counter_on_a_hand_made_source():
    annotated, total, missing = count_annotations(HAND_MADE, "m.py")
    # annotated + Public.__init__ are complete; no_return lacks its return, Public.method its parameter, and
    # Public.static's first parameter is an ordinary one (a staticmethod has no self); nested, _private,
    # __len__, _helper and _Private.method are not public.
    assert (annotated, total) == (2, 5)
    assert missing == ["m.py:11 no_return", "m.py:23 Public.method", "m.py:27 Public.static"]


def test_counter_two_of_four():
    source = ("def a(x: int) -> int:\n    def inner(y):\n        return y\n    return x\n"
              "def b() -> None:\n    pass\n"
              "def c(x: int):\n    return x\n"                  # no return annotation
              "def d(*args: int, **kwargs) -> None:\n    pass\n"  # **kwargs without annotation
              "def _e(x):\n    pass\n")
    assert count_annotations(source)[:2] == (2, 4)


def test_public_functions_are_annotated():
    annotated, total, missing = package_annotations()
    share = annotated / total
    assert share >= THRESHOLD, (f"{annotated}/{total} = {share:.1%} of the public functions are fully annotated "
                                f"(needs {THRESHOLD:.0%}); the first {min(SHOWN, len(missing))} of "
                                f"{len(missing)} not:\n" + "\n".join(missing[:SHOWN]))
