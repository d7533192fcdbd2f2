"""The course's targets (the entries of utils/expectations.py with a bound) and the check that ends a whole `make course` run."""

from __future__ import annotations

import copy

import pytest

from utils import course, results
from utils import expectations as targets
from utils.config import get_profile

#: A tiny course's metrics that meet every target (the figures of a past run, rounded).
MET = {
    "single_task": {"gain_over_zero_shot": {"full": 0.46, "lora": 0.31}},
    "forgetting": {"average": {"base": 0.77, "full": 0.22, "lora": 0.70},
                   "average_drop_ci": {"full": {"low": 0.51, "high": 0.59}}},
    "multitask": {"probe_retention": 0.96, "target_gap_to_single_task_full": 0.08},
}


def _missed(metrics, profile="tiny"):
    return [row["target"] for row in targets.check(metrics, profile) if not row["met"]]


def test_a_run_that_meets_every_target_passes():
    rows = targets.check(MET, "tiny")
    assert len(rows) == len(targets.targets_for("tiny")) == 4 and all(row["met"] for row in rows)
    assert rows[1]["value"] == pytest.approx(0.51)  # the low end of the forgetting drop's interval
    assert rows[1]["bound"] == "> 0"
    targets.raise_if_missed(rows)


@pytest.mark.parametrize(("path", "value", "missed"), [
    (("single_task", "gain_over_zero_shot", "full"), 0.24, "gains ROUGE-1"),
    (("forgetting", "average_drop_ci", "full", "low"), 0.0, "lowers the average probe score"),
    (("multitask", "probe_retention"), 0.89, "keeps the probes"),
    (("multitask", "target_gap_to_single_task_full"), 0.11, "behind single-task full"),
])
def test_each_target_fails_just_past_its_bound(path, value, missed):
    metrics = copy.deepcopy(MET)
    *parents, key = path
    section = metrics
    for parent in parents:
        section = section[parent]
    section[key] = value
    names = _missed(metrics)
    assert len(names) == 1 and missed in names[0]
    with pytest.raises(targets.TargetsMissed, match=r"1 of 4 course targets missed: .*needs"):
        targets.raise_if_missed(targets.check(metrics, "tiny"))


def test_forgetting_is_asked_as_a_measurable_drop_not_as_a_size():
    """A small drop whose interval excludes 0 meets the target (FLAN-T5 forgets at every seed, by how much
    varies); the size alone (the old ">= 0.3", which the build seed decided) is no longer a target."""
    metrics = copy.deepcopy(MET)
    metrics["forgetting"]["average"]["full"] = 0.75  # a drop of 0.02
    metrics["forgetting"]["average_drop_ci"]["full"] = {"low": 0.004, "high": 0.036}
    assert _missed(metrics) == []
    metrics["forgetting"]["average_drop_ci"]["full"]["low"] = -0.004
    assert _missed(metrics) == ["full fine-tuning lowers the average probe score (95% interval above 0)"]


def test_a_missing_lesson_is_a_miss_that_names_the_lesson():
    metrics = {k: v for k, v in MET.items() if k != "multitask"}
    rows = [row for row in targets.check(metrics, "tiny") if not row["met"]]
    assert len(rows) == 2 and all(row["note"] == "missing from metrics.json: run lesson 05" for row in rows)


def test_smoke_and_full_have_no_targets():
    assert targets.check({}, "smoke") == [] and targets.check({}, "full") == []
    assert "no course targets" in targets.markdown([], "smoke")[0]


def test_markdown_marks_a_miss():
    metrics = copy.deepcopy(MET)
    metrics["multitask"]["probe_retention"] = 0.5
    text = "\n".join(targets.markdown(targets.check(metrics, "tiny"), "tiny"))
    assert "| multi-task tuning keeps the probes (share of the base's average) | 0.500 | >= 0.9 | **NO** |" in text


def test_a_whole_course_run_ends_with_the_target_check(monkeypatch, tmp_results, capsys):
    """``make course`` exits 1 when the notebooks ran but a target was missed, and 0 when all are met."""
    monkeypatch.setattr(course, "execute_notebook", lambda path, out: 0.1)
    monkeypatch.setattr(course, "course_notebooks", lambda: [course.NOTEBOOK_DIR / "00_welcome_and_data.ipynb"])
    tiny = get_profile("tiny")
    for section, values in MET.items():
        results.save_metrics(section, values, tiny)
    assert course.main(["run", "--profile", "tiny"]) == 0
    assert "| **NO** |" not in (tiny.results_dir / "report.md").read_text()
    results.save_metrics("multitask", {**MET["multitask"], "probe_retention": 0.5}, tiny)
    assert course.main(["run", "--profile", "tiny"]) == 1
    assert "1 of 4 course targets missed" in capsys.readouterr().err
    assert "| **NO** |" in (tiny.results_dir / "report.md").read_text()
    assert course.main(["check", "--profile", "tiny"]) == 1
    assert course.main(["run", "--profile", "tiny", "--only", "00"]) == 0  # a partial run judges nothing
