"""The profile is resolved once, at the entry points, and passed on: no lower layer reads the environment.

Entry points (the notebook's set-up, the command lines, the world's builders) call ``get_profile``; everything
below them takes the profile as a required argument. This scans ``utils`` and ``benchmarks`` and names any
function that falls back to the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from utils.config import ROOT

SOURCES = sorted((ROOT / "utils").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))

#: Where ``get_profile`` may be called: file -> enclosing functions (``<module>``: top level; ``*``: anywhere).
ENTRY_POINTS = {
    "utils/config.py": {"*"},  # defines it
    "utils/notebook.py": {"setup"},  # the notebook's set-up returns the profile
    "utils/modeling.py": {"<module>"},  # python -m utils.modeling
    "utils/course.py": {"*"},  # python -m utils.course
    "utils/train.py": {"*"},  # python -m utils.train
    "utils/world/tiny_flan.py": {"*"},  # make model
    "benchmarks/run.py": {"*"},  # python -m benchmarks.run
    "benchmarks/rouge_speed.py": {"main"},  # python -m benchmarks.rouge_speed
    "benchmarks/shared_runs.py": {"main"},  # python -m benchmarks.shared_runs
}
#: Where ``COURSE_PROFILE`` may be read: the profile itself, and the Hub decision taken as ``utils`` is imported.
READS_THE_VARIABLE = {"utils/config.py", "utils/__init__.py"}


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _scopes(tree: ast.AST):
    """Every node with the name of the function it is in (``<module>`` at the top level)."""
    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            yield child, inner
            yield from walk(child, inner)

    yield from walk(tree, "<module>")


def _called_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def get_profile_calls(path: Path, source: str) -> list[str]:
    """``get_profile`` calls outside the entry points, as ``file:line in function``."""
    allowed = ENTRY_POINTS.get(_relative(path), set())
    return [f"{_relative(path)}:{node.lineno} in {scope}: get_profile(...)"
            for node, scope in _scopes(ast.parse(source))
            if isinstance(node, ast.Call) and _called_name(node) == "get_profile"
            and "*" not in allowed and scope not in allowed]


def optional_profiles(path: Path, source: str) -> list[str]:
    """Parameters that may be left out and then mean "the active profile": ``profile`` or anything typed
    ``Profile`` with a default of None."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args
        positional = arguments.posonlyargs + arguments.args
        defaults = [None] * (len(positional) - len(arguments.defaults)) + arguments.defaults
        pairs = list(zip(positional, defaults, strict=True)) + list(zip(arguments.kwonlyargs, arguments.kw_defaults,
                                                                        strict=True))
        for argument, default in pairs:
            typed = argument.annotation is not None and "Profile" in ast.unparse(argument.annotation)
            if (argument.arg == "profile" or typed) and isinstance(default, ast.Constant) and default.value is None:
                found.append(f"{_relative(path)}:{argument.lineno} in {node.name}: {argument.arg}=None")
    return found


def reads_of_the_variable(path: Path, source: str) -> list[str]:
    """``os.environ.get("COURSE_PROFILE")``, ``os.getenv(...)`` or ``os.environ["COURSE_PROFILE"]`` read outside
    :data:`READS_THE_VARIABLE` (setting it for a child process is fine)."""
    if _relative(path) in READS_THE_VARIABLE:
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        by_call = isinstance(node, ast.Call) and _called_name(node) in {"get", "getenv", "pop"} and \
            any(_is_the_variable(a) for a in node.args)
        by_index = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_the_variable(node.slice)
        if by_call or by_index:
            found.append(f"{_relative(path)}:{node.lineno}: reads COURSE_PROFILE")
    return found


def _is_the_variable(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == "COURSE_PROFILE"


CHECKS = {"get_profile outside an entry point": get_profile_calls,
          "a profile parameter that defaults to None": optional_profiles,
          "COURSE_PROFILE read below the entry points": reads_of_the_variable}


@pytest.mark.parametrize("check", CHECKS, ids=list(CHECKS))
def test_no_lower_layer_falls_back_to_the_environment(check):
    offenders = [line for path in SOURCES for line in CHECKS[check](path, path.read_text(encoding="utf-8"))]
    assert not offenders, (f"{check}: " + "; ".join(offenders) + ". Resolve the profile once at the entry point "
                           "(the notebook's set-up, a command line) and pass it on as a required argument.")


FALLBACKS = {
    "get_profile outside an entry point": "def load(profile=None):\n    return profile or get_profile()\n",
    "a profile parameter that defaults to None": "def load(model: str | Profile | None = None):\n    pass\n",
    "COURSE_PROFILE read below the entry points": "name = os.environ.get('COURSE_PROFILE', 'tiny')\n",
}


@pytest.mark.parametrize("check", CHECKS, ids=list(CHECKS))
def test_each_check_names_a_fallback(check):
    """The scan finds what it looks for (a check that finds nothing anywhere would pass for the wrong reason)."""
    path = ROOT / "utils" / "data.py"
    offenders = CHECKS[check](path, FALLBACKS[check])
    assert len(offenders) == 1 and offenders[0].startswith("utils/data.py:"), offenders
