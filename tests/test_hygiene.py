"""Notebooks are committed clean, and nothing unsafe creeps into the course."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from utils.config import ROOT
from utils.course import course_notebooks

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Every lesson's first code cell: it prints where the notebook runs and returns the profile.
SETUP_CELL = "from utils import notebook\n\nprofile = notebook.setup()"
SOURCES = sorted((ROOT / "utils").rglob("*.py")) + NOTEBOOKS + sorted((ROOT / "benchmarks").rglob("*.py")) + sorted((ROOT / "tools").rglob("*.py"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _code(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code"]


def test_there_are_lessons():
    names = [p.name for p in course_notebooks()]
    assert names and names[0].startswith("00_"), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    dirty = [i for i, c in enumerate(_cells(path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


#: The notebook metadata JupyterLab writes for the course's kernel (`make kernel`: "Python (flan-course)"), so that
#: opening a lesson leaves it unchanged. `version` is the kernel's Python as major.minor: a patch release of
#: Python must not change the files (JupyterLab writes the patch too; saving from it shows up here).
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python (flan-course)", "language": "python", "name": "flan-course"},
    "language_info": {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": "3.11",
    },
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_metadata_is_the_course_kernels(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"] == NOTEBOOK_METADATA, f"{path.name}: metadata {notebook['metadata']}"
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5), path.name


def test_the_metadata_names_the_kernel_that_make_kernel_registers():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    name = re.search(r"^KERNEL_NAME \?= (\S+)$", makefile, re.M).group(1)
    assert NOTEBOOK_METADATA["kernelspec"]["name"] == name
    assert NOTEBOOK_METADATA["kernelspec"]["display_name"] == f"Python ({name})"


def test_every_executor_runs_the_notebooks_on_python3_whether_or_not_flan_course_is_registered():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"--nbmake\b.*--nbmake-kernel=python3", makefile), "make notebooks: --nbmake-kernel=python3"
    assert 'kernel_name="python3"' in (ROOT / "utils" / "course.py").read_text(encoding="utf-8")
    assert "--ExecutePreprocessor.kernel_name=python3" in (ROOT / "tests" / "test_full_profile.py").read_text()


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_first_code_cell_is_the_two_line_set_up_cell(path):
    assert _code(path)[0] == SETUP_CELL, f"{path.name}: the first code cell should be the set-up cell, {SETUP_CELL!r}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_remote_code_and_no_secrets(path):
    text = path.read_text()
    assert not re.search(r"trust_remote_code\s*=\s*True", text), f"{path} enables trust_remote_code"
    assert not re.search(r"hf_[A-Za-z0-9]{30,}", text), f"{path} contains what looks like a Hugging Face token"
    assert "torch.load(" not in text or "weights_only=True" in text, f"{path} unpickles with torch.load"


# ---------------------------------------------------------------------------------------------
# `make notebooks` reruns a notebook whose kernel failed to start, and nothing else
# ---------------------------------------------------------------------------------------------

FLAKY_TESTS = '''
import os
from pathlib import Path


def _call(name):
    counter = Path(os.environ["CALLS_DIR"]) / name
    counter.write_text(counter.read_text() + "x" if counter.exists() else "x")
    return len(counter.read_text())


def test_kernel_start_races():
    if _call("start") == 1:
        raise RuntimeError("Kernel didn't respond in 60 seconds")


def test_a_cell_fails():
    _call("cell")
    raise AssertionError("a cell raised")
'''


def _makefile_rerun_args() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    notebooks = re.search(r"^notebooks:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "$(NB_RERUN)" in notebooks, "make notebooks should pass $(NB_RERUN) to pytest"
    return shlex.split(re.search(r"^NB_RERUN := (.*)$", makefile, re.M).group(1))


def test_make_notebooks_reruns_kernel_start_failures_only(tmp_path):
    (tmp_path / "test_flaky.py").write_text(FLAKY_TESTS, encoding="utf-8")
    calls = tmp_path / "calls"
    calls.mkdir()
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *_makefile_rerun_args(),
                          str(tmp_path / "test_flaky.py")], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "CALLS_DIR": str(calls)})
    assert (calls / "start").read_text() == "xx", run.stdout  # failed to start once, then ran
    assert (calls / "cell").read_text() == "x", run.stdout  # a failing cell is not retried
    assert "1 failed, 1 passed, 1 rerun" in run.stdout, run.stdout


def test_make_lab_answers_jupyters_news_question_never_in_the_venv_only():
    """`make lab` writes a JupyterLab settings default (overrides.d, in .venv) that the installed JupyterLab's
    schema accepts: the news pop-up's setting, "Never"."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^LAB_SETTINGS := (\S+)$", makefile, re.M).group(1)
    assert target.startswith("$(VENV)/share/jupyter/lab/settings/overrides.d/"), target
    written = json.loads(re.search(r"^\techo '(.*)' > \$@$", makefile, re.M).group(1))
    assert written == {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}
    schema = Path(sys.prefix, "share/jupyter/lab/schemas/@jupyterlab/apputils-extension/notification.json")
    if schema.is_file():
        values = [choice["const"] for choice in json.loads(schema.read_text())["properties"]["fetchNews"]["oneOf"]]
        assert "false" in values, values
    lab = re.search(r"^lab:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "$(LAB_SETTINGS)" in lab and "$(LAB_ARGS)" in lab
    assert "allowed_kernelspecs=$(KERNEL_NAME)" in re.search(r"^LAB_ARGS := (.*)$", makefile, re.M).group(1)
    ui_test = re.search(r"^ui-test:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "$(LAB_SETTINGS)" in ui_test and "$(LAB_ARGS)" in ui_test  # the browser check starts lab as make lab
