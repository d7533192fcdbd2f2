"""The notebooks' set-up cell (utils/notebook.py): it gets the course only from the published, pinned address."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from utils import config
from utils.notebook import COLAB_CELL, GET_THE_COURSE, colab_cell

REPO, REF = "https://example.org/course.git", "v1.2.0"


@pytest.fixture
def hosted(tmp_path, monkeypatch):
    """A hosted notebook without the course: an empty working folder, and `utils` importable only from a
    folder the cell put on sys.path. Returns the commands the cell runs; each git checkout "writes" the course."""
    commands = []

    def run(command, *args, **kwargs):
        commands.append(command)
        if command[:2] == ["git", "-C"] and "checkout" in command:
            (Path(command[2]) / "utils").mkdir(parents=True)
            (Path(command[2]) / "utils" / "notebook.py").write_text("")
            (Path(command[2]) / "notebooks").mkdir()
        return subprocess.CompletedProcess(command, 0)

    real_find_spec = importlib.util.find_spec
    course = tmp_path / "course"

    def find_spec(name, *args):
        if name == "utils":
            return object() if any(Path(p) == course for p in sys.path) else None
        return real_find_spec(name, *args)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    return commands


def test_first_cell_uses_the_one_published_setting():
    assert COLAB_CELL == colab_cell(config.PUBLISHED_REPO, config.PUBLISHED_REF)
    assert "github.com/flan-course" not in COLAB_CELL  # the address this project never owned


def test_unset_address_says_how_to_get_the_course(hosted):
    with pytest.raises(SystemExit) as stop:
        exec(colab_cell(None, None), {})
    assert str(stop.value) == GET_THE_COURSE and "clone" in GET_THE_COURSE and "upload" in GET_THE_COURSE
    assert hosted == []  # nothing is fetched from anywhere


def test_set_address_fetches_that_tag_or_commit_only(hosted, tmp_path):
    exec(colab_cell(REPO, REF), {})
    assert hosted[:3] == [["git", "init", "-q", "course"],
                          ["git", "-C", "course", "fetch", "-q", "--depth", "1", REPO, REF],
                          ["git", "-C", "course", "checkout", "-q", "--detach", "FETCH_HEAD"]]
    assert hosted[3][-2:] == ["-r", "course/requirements-colab.txt"] and len(hosted) == 4
    assert Path.cwd() == tmp_path / "course" / "notebooks" and str(tmp_path / "course") in sys.path


def test_running_the_cell_again_or_after_a_restart_fetches_nothing(hosted, tmp_path, monkeypatch):
    cell = colab_cell(REPO, REF)
    exec(cell, {})
    fetched, path, folder = len(hosted), list(sys.path), Path.cwd()
    exec(cell, {})  # again in the same session: the course is importable now, nothing changes
    assert len(hosted) == fetched and sys.path == path and Path.cwd() == folder
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "course")])  # a kernel restart
    monkeypatch.chdir(tmp_path)
    exec(cell, {})
    assert len(hosted) == fetched and str(tmp_path / "course") in sys.path


def test_on_colab_a_course_found_on_disk_gets_its_packages_and_the_full_profile(hosted, tmp_path, monkeypatch):
    (tmp_path / "course" / "utils").mkdir(parents=True)
    (tmp_path / "course" / "utils" / "notebook.py").write_text("")
    (tmp_path / "course" / "notebooks").mkdir()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(colab_cell(None, None), {})  # uploaded by the learner: no address needed
    assert [command[1:4] for command in hosted] == [["-m", "pip", "install"]]
    assert os.environ["COURSE_PROFILE"] == "full"


def test_a_failed_fetch_says_what_failed_and_what_to_do(hosted, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda command, *a, **k: subprocess.CompletedProcess(
        command, 128 if "fetch" in command else 0))
    with pytest.raises(SystemExit, match=r"failed at: git -C course fetch .* v1\.2\.0\. Check the network"):
        exec(colab_cell(REPO, REF), {})


def test_an_address_needs_its_pin():
    with pytest.raises(ValueError, match="PUBLISHED_REF"):
        colab_cell(REPO, None)


# --- what a run leaves outside the course ------------------------------------------------------------------
def _run_python(code: str, home: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_", "COURSE_"))}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, "HOME": str(home), **env},
                          capture_output=True, text=True, timeout=300, cwd=config.ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_offline_profiles_leave_the_home_hugging_face_cache_alone(tmp_path):
    results = tmp_path / "results"
    _run_python("from utils import data, evaluation, get_profile; data.load_target(get_profile()); "
                "print(evaluation.score_summaries(['a b'], [['a b c']])['rouge1'])",
                tmp_path / "home", COURSE_PROFILE="smoke", COURSE_RESULTS_DIR=str(results),
                PYTHONPATH=str(config.ROOT))
    assert not (tmp_path / "home" / ".cache").exists(), "an offline run wrote to ~/.cache"
    assert (results / ".hf-cache" / "datasets").is_dir()
    full = _run_python("import os, utils; print(os.environ.get('HF_HOME'))", tmp_path / "home",
                       COURSE_PROFILE="full", PYTHONPATH=str(config.ROOT))
    assert full.strip() == "None"  # the full profile uses the learner's own Hugging Face cache


def test_bonus_notebook_quick_build_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import json
    import tempfile

    notebook = json.loads((config.ROOT / "notebooks" / "bonus_how_the_tiny_model_was_made.ipynb").read_text())
    cell = next("".join(c["source"]) for c in notebook["cells"] if "BuildConfig.quick()" in "".join(c["source"]))

    def build(out, build_config):  # stands in for the real quick build: writes a model folder
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"0" * 100)
        return {"n_parameters": 1, "build_seconds": {"total": 0.0}}

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    tiny_flan = types.SimpleNamespace(build=build, BuildConfig=types.SimpleNamespace(quick=lambda: None))
    exec(cell, {"tiny_flan": tiny_flan})
    assert list(temporary.iterdir()) == []
