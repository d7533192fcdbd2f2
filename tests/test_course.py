"""The course's notebook list: the numbered lessons in order, then the bonus notebook."""

from __future__ import annotations

import subprocess
import threading

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
    calls = []
    commands = []
    monkeypatch.setattr(course.subprocess, "run", lambda argv, **kwargs: commands.append(argv[3:]))
    course.train_shared_runs(profile, side_by_side=False)

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


def _fake_runs(monkeypatch, failing=()):
    """Replace ``subprocess.run`` in ``utils.course`` by runs that record ("start" / "end", method) and
    ("env", environment); each waits up to a second for the other to be under way too (side by side, both are:
    both start before either ends, in whatever order the threads start); ``failing`` methods exit 1."""
    events, both_started = [], threading.Barrier(len(course.SHARED_RUNS), timeout=1.0)

    def run(argv, env=None, check=False, **kwargs):
        method = argv[argv.index("--method") + 1]
        events.extend([("start", method), ("env", env)])
        try:
            both_started.wait()
        except threading.BrokenBarrierError:  # one after the other: the other run has not started
            pass
        events.append(("end", method))
        if method in failing and check:
            raise subprocess.CalledProcessError(1, argv)

    monkeypatch.setattr(course.subprocess, "run", run)
    return events


@pytest.mark.parametrize("side_by_side", [True, False])
def test_shared_runs_train_side_by_side_on_split_cores_or_one_after_the_other(monkeypatch, side_by_side):
    from utils.config import get_profile

    monkeypatch.setattr(course.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    events = _fake_runs(monkeypatch)
    course.train_shared_runs(get_profile("smoke"), side_by_side=side_by_side)
    first, second = (method for method, _ in course.SHARED_RUNS)
    order = [event for event in events if event[0] != "env"]
    envs = [env for kind, env in events if kind == "env"]
    if side_by_side:
        assert sorted(order[:2]) == sorted([("start", first), ("start", second)]), "both under way at once"
        assert sorted(order[2:]) == sorted([("end", first), ("end", second)])
        assert all(env["OMP_NUM_THREADS"] == "2" and env["TQDM_DISABLE"] == "1" for env in envs), \
            "4 cores split between 2 runs, whose progress bars would garble each other"
    else:
        assert order == [("start", first), ("end", first), ("start", second), ("end", second)]
        assert envs == [None, None], "one after the other, each with every core and its progress bar"


def test_a_failing_shared_run_stops_the_course_once_the_other_is_saved(monkeypatch):
    from utils.config import get_profile

    first, second = (method for method, _ in course.SHARED_RUNS)
    events = _fake_runs(monkeypatch, failing=(first,))
    with pytest.raises(subprocess.CalledProcessError):
        course.train_shared_runs(get_profile("smoke"), side_by_side=True)
    assert ("end", second) in events, "the other run finishes (and is cached for the next try)"


@pytest.mark.parametrize(("cores", "device", "together"), [(2, "cpu", True), (1, "cpu", False), (8, "cuda", False)])
def test_shared_runs_go_side_by_side_only_on_a_cpu_with_a_core_per_run(monkeypatch, cores, device, together):
    """On one GPU two trainings would compete for its memory; on one core, for the core."""
    from utils.config import get_profile

    monkeypatch.setattr(course.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(course, "device", lambda: device)
    events = _fake_runs(monkeypatch)
    course.train_shared_runs(get_profile("smoke"))
    order = [kind for kind, _ in events if kind != "env"]
    assert (order[:2] == ["start", "start"]) == together, "the second run starts before the first has ended"
