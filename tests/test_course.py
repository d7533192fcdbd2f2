"""The course's notebook list: the numbered lessons in order, then the bonus notebook."""

from __future__ import annotations

import pytest

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


def test_the_shared_runs_the_course_trains_first_are_the_runs_lesson_04_loads(monkeypatch):
    """``utils.course`` trains lesson 04's learning-rate grid with ``python -m utils.train`` before the lessons;
    lesson 04 (``finetuning.single_task_run``) must ask for exactly those runs, or it trains them again."""
    from utils import course, finetuning, train, training
    from utils.config import get_profile

    profile = get_profile("smoke")
    commands, calls = [], []
    monkeypatch.setattr(course.subprocess, "run", lambda argv, **kwargs: commands.append(argv[3:]))
    course.train_shared_runs(profile)

    def record(name, method, train_data, profile_, eval_data=None, **kwargs):
        calls.append((name, method, kwargs.get("learning_rate"), training.data_fingerprint(train_data),
                      training.data_fingerprint(eval_data), kwargs.get("output_dir"), kwargs.get("steps")))
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", record)
    monkeypatch.setattr(train, "FirstBatchLog", lambda *a: None)
    for argv in commands:
        with pytest.raises(SystemExit):
            train.main(argv)
    from_cli, calls[:] = list(calls), []
    for method, rate in course.SHARED_RUNS:
        with pytest.raises(SystemExit):
            finetuning.single_task_run(method, profile, learning_rate=getattr(profile, rate))
    assert len(from_cli) == len(course.SHARED_RUNS) and from_cli == calls
