"""The README's "Open in Colab" badges come from the one published-address setting (utils.config)."""

from __future__ import annotations

import re
import shutil

from utils import config, notebook
from utils.course import course_notebooks

README = config.ROOT / "README.md"
GITHUB, REF = "https://github.com/example/flan-course.git", "v1.2.0"


def _table_cells(text: str) -> dict[str, str]:
    """``{notebook: last cell}`` of the README's lesson table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(notebook.LESSON_TABLE_HEADER))
    cells = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        parts = [part.strip() for part in line.strip("|").split(" | ")]
        cells[parts[1].strip("`")] = parts[-1]
    return cells


def test_the_readmes_badges_are_what_the_published_address_gives():
    text = README.read_text(encoding="utf-8")
    assert notebook.readme_with_badges(text) == text, "run `python -m utils.notebook sync` to update the README"
    cells = _table_cells(text)
    assert list(cells) == [path.stem for path in course_notebooks()]  # one row per lesson, in order
    assert set(cells.values()) == {notebook.colab_badge(name) for name in cells}


def test_a_published_github_copy_gives_every_lesson_its_colab_link(tmp_path):
    cells = _table_cells(notebook.readme_with_badges(README.read_text(encoding="utf-8"), GITHUB, REF))
    for name, cell in cells.items():
        link = re.fullmatch(r"\[!\[Open in Colab\]\((.+?)\)\]\((.+?)\)", cell)
        assert link, cell
        assert link[2] == f"https://colab.research.google.com/github/example/flan-course/blob/{REF}/notebooks/{name}.ipynb"
        assert (config.ROOT / "notebooks" / f"{name}.ipynb").is_file()


def test_only_a_published_copy_on_github_gets_badges():
    assert notebook.colab_url("00_welcome_and_data", None, None) is None
    assert notebook.colab_url("00_welcome_and_data", GITHUB, None) is None  # unpinned: no badge
    assert notebook.colab_url("00_welcome_and_data", "https://gitlab.com/example/flan-course.git", REF) is None
    assert notebook.colab_url("x", "git@github.com:example/flan-course.git", REF) == notebook.colab_url("x", GITHUB, REF)
    assert notebook.colab_badge("x", None, None) == notebook.NOT_PUBLISHED


def test_sync_writes_the_badges_into_the_readme_and_nothing_else(tmp_path):
    copy = tmp_path / "README.md"
    shutil.copy(README, copy)
    assert notebook.sync_readme(copy, GITHUB, REF) is True
    before, after = README.read_text(encoding="utf-8").splitlines(), copy.read_text(encoding="utf-8").splitlines()
    changed = [old for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == len(course_notebooks()) and all(line.startswith("| ") for line in changed)
    assert notebook.sync_readme(copy, GITHUB, REF) is False  # a second sync changes nothing
