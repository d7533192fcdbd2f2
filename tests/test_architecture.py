"""The shape of ``utils``: imports run one way (no circle), and public means used elsewhere.

``utils/world/`` (the offline world's build tools) is outside both checks. A name is *used elsewhere* when a
notebook's code, a test, a benchmark, another ``utils`` module (``utils/world/`` included), the Makefile,
``pyproject.toml`` or a code block of the docs reaches it through its module (``module.name``,
``from utils.module import name``, ``setattr(module, "name", ...)``, ``utils.module:name``). Anything else is
private (a leading underscore) or gone.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from utils.config import ROOT

UTILS = ROOT / "utils"
MODULES = {path.stem: path for path in sorted(UTILS.glob("*.py"))}  # "__init__" is the package itself



def _imports(path: Path) -> set[str]:
    """The ``utils`` modules a module imports, anywhere in it (a function's import counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("utils.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "utils":
                found |= {alias.name if alias.name in MODULES else "__init__" for alias in node.names}
            elif node.module.startswith("utils."):
                found.add(node.module.split(".")[1])
    return {name for name in found if name in MODULES and name != path.stem}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path around each circle (``[a, b, a]``), found by a depth-first walk."""
    circles, done = [], set()

    def visit(module: str, path: list[str]):
        for imported in sorted(graph[module]):
            if imported in path:
                circle = path[path.index(imported):] + [imported]
                if sorted(circle[:-1]) not in [sorted(c[:-1]) for c in circles]:
                    circles.append(circle)
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    return circles


def test_no_import_circle_among_the_utils_modules():
    graph = {name: _imports(path) for name, path in MODULES.items()}
    circles = _circles(graph)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle_through_a_chain():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


# ---------------------------------------------------------------------------------------------
# Public means used elsewhere
# ---------------------------------------------------------------------------------------------


def _public_names(path: Path) -> set[str]:
    """The functions, classes and constants a module defines at its top level without a leading underscore."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def _code_blocks(path: Path) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def _sources() -> list[tuple[str, str]]:
    """(where, text) of every place that may use a ``utils`` name."""
    sources = [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8"))
               for folder in ("utils", "tests", "benchmarks", "tools") for p in sorted((ROOT / folder).rglob("*.py"))]
    sources += [(p.name, "\n".join(_code_cells(p))) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    sources += [(f"{p.name} block", block) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
                for block in _code_blocks(p)]
    sources += [(name, (ROOT / name).read_text(encoding="utf-8")) for name in ("Makefile", "pyproject.toml")]
    return sources


def _uses_in_python(tree: ast.AST) -> set[tuple[str, str]]:
    """(module, name) pairs a piece of Python reaches through the module."""
    aliases: dict[str, str] = {}  # local name -> utils module
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "utils":
                for alias in node.names:
                    if alias.name in MODULES:
                        aliases[alias.asname or alias.name] = alias.name
                    else:
                        uses.add(("__init__", alias.name))
            elif node.module.startswith("utils.") and node.module.count(".") == 1:
                uses |= {(node.module.split(".")[1], alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "utils":
                    aliases[alias.asname or "utils"] = "__init__"
                elif alias.name.startswith("utils.") and alias.asname:
                    aliases[alias.asname] = alias.name.split(".")[1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.add((aliases[node.value.id], node.attr))
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
              and isinstance(node.value.value, ast.Name) and node.value.value.id == "utils"):
            uses.add((node.value.attr, node.attr))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "setattr", "getattr", "delattr", "hasattr") and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if isinstance(target, ast.Name) and target.id in aliases and isinstance(name, ast.Constant):
                uses.add((aliases[target.id], str(name.value)))
            elif isinstance(target, ast.Constant) and isinstance(target.value, str):
                match = re.fullmatch(r"utils\.(\w+)\.(\w+)", target.value)
                if match:
                    uses.add((match[1], match[2]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "from utils" in node.value:
            try:  # a script a test runs in a subprocess
                uses |= _uses_in_python(ast.parse(node.value))
            except SyntaxError:
                pass
    return uses | _uses_in_text_commands(ast.unparse(tree))


def _uses_in_text_commands(text: str) -> set[tuple[str, str]]:
    """``python -m utils.module`` runs the module's ``main``."""
    return {(m, "main") for m in re.findall(r"-m utils\.(\w+)", text) if m in MODULES}


def _uses_in_text(text: str) -> set[tuple[str, str]]:
    """(module, name) pairs a command line or shell block names: ``module.name``, ``utils.module:name``."""
    return {(m, n) for m, n in re.findall(r"\b(\w+)[.:](\w+)\b", text) if m in MODULES} | _uses_in_text_commands(text)


def _uses() -> dict[tuple[str, str], set[str]]:
    """Every (module, name) pair used, with where."""
    found: dict[tuple[str, str], set[str]] = {}
    for where, text in _sources():
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())
        try:
            uses = _uses_in_python(ast.parse(code))
        except SyntaxError:
            uses = _uses_in_text(text)
        for use in uses:
            found.setdefault(use, set()).add(where)
    return found


def _module_of(where: str) -> str | None:
    return where[len("utils/"):-3] if where.startswith("utils/") and where.count("/") == 1 else None


def unused_public_names() -> dict[str, set[str]]:
    """Per module, the public names that nothing outside the module uses."""
    uses = _uses()
    unused = {}
    for module, path in MODULES.items():
        names = {name for name in _public_names(path)
                 if not any(_module_of(where) != module for where in uses.get((module, name), ()))}
        if names:
            unused[module] = names
    return unused


def test_every_public_name_is_used_outside_its_module():
    left = {module: sorted(names) for module, names in unused_public_names().items() if names}
    assert not left, ("public names nothing outside their module uses (make them private with a leading "
                      f"underscore, or delete them): {left}")


# ---------------------------------------------------------------------------------------------
# Small enough to read
# ---------------------------------------------------------------------------------------------

#: The package's size budget (issue 31): a newcomer reads ``utils`` in an afternoon. ``utils/world/`` (the
#: offline world's build tools) is outside it.
MAX_MODULES, MAX_LINES = 20, 5000


def test_utils_stays_within_its_size_budget():
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    assert len(lines) <= MAX_MODULES, f"{len(lines)} modules in utils/ (at most {MAX_MODULES}): {sorted(lines)}"
    assert sum(lines.values()) <= MAX_LINES, (
        f"utils/ has {sum(lines.values())} lines (at most {MAX_LINES}); the largest: "
        f"{sorted(lines.items(), key=lambda item: -item[1])[:5]}. Shorten or move code, don't grow the budget.")
