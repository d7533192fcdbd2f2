"""The course's notebook list: the numbered lessons in order, then the bonus notebook."""

from __future__ import annotations

from utils import course


def test_the_bonus_notebook_runs_after_the_lessons():
    names = [p.name for p in course.course_notebooks()]
    assert names[-1] == "bonus_how_the_tiny_model_was_made.ipynb"
    lessons = names[:-1]
    assert lessons == sorted(lessons) and lessons[0].startswith("00_") and lessons[-1].startswith("06_")


def test_only_lessons_and_the_listed_extras_are_run(tmp_path):
    for name in ("06_last.ipynb", "00_first.ipynb", "scratch.ipynb", *course.AFTER_LESSONS):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course.course_notebooks(tmp_path)] == ["00_first.ipynb", "06_last.ipynb",
                                                                    *course.AFTER_LESSONS]
    (tmp_path / course.AFTER_LESSONS[0]).unlink()  # a copy without the bonus runs the lessons alone
    assert [p.name for p in course.course_notebooks(tmp_path)] == ["00_first.ipynb", "06_last.ipynb"]
