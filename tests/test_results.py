"""metrics.json: sections, atomic writes, parallel writers."""

import dataclasses
import json
import multiprocessing
import os

import pytest

from utils import results
from utils.config import Profile, get_profile


@pytest.fixture
def profile(tmp_path, monkeypatch):
    """A profile whose results folder is a temporary one."""
    monkeypatch.setattr(Profile, "results_dir", property(lambda self: tmp_path / self.name))
    return dataclasses.replace(get_profile("smoke"), name="test-profile")


def test_sections_merge_into_metrics(profile):
    results.save_metrics("zero_shot", {"rouge1": 0.25, "n_dialogues": 16}, profile)
    path = results.save_metrics("templates", {"best": "a"}, profile)
    metrics = json.loads(path.read_text())
    assert metrics == {"templates": {"best": "a"}, "zero_shot": {"n_dialogues": 16, "rouge1": 0.25}}
    assert results.load_metrics(profile) == metrics


def test_nan_is_refused_and_old_file_kept(profile):
    path = results.save_metrics("zero_shot", {"rouge1": 0.25}, profile)
    before = path.read_text()
    with pytest.raises(ValueError, match="NaN"):
        results.save_metrics("zero_shot", {"rouge1": float("nan")}, profile)
    assert path.read_text() == before
    assert not [p for p in path.parent.rglob("*.tmp")]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    results.atomic_write_json(target, {"a": 1})

    with pytest.raises(TypeError):
        results.atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def _writer(args):
    folder, index = args
    Profile.results_dir = property(lambda self: folder / self.name)  # in this worker process only
    profile = dataclasses.replace(get_profile("smoke"), name="parallel")
    for repeat in range(5):
        results.save_metrics(f"section_{index}", {"value": index, "repeat": repeat}, profile)


def test_parallel_writers_keep_every_section(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_writer, [(tmp_path, i) for i in range(8)])
    metrics = json.loads((tmp_path / "parallel" / "metrics.json").read_text())
    assert sorted(metrics) == [f"section_{i}" for i in range(8)]
    assert all(metrics[f"section_{i}"]["repeat"] == 4 for i in range(8))


def test_metric_comparison_ignores_times_only():
    from utils.course import metric_differences

    first = {"single_task": {"full": {"rouge1": 0.5, "train_seconds": 10.0}}, "zero_shot": {"rouge1": 0.2}}
    same_but_slower = {"single_task": {"full": {"rouge1": 0.5, "train_seconds": 99.0}}, "zero_shot": {"rouge1": 0.2}}
    assert metric_differences(first, same_but_slower) == []
    changed = {"single_task": {"full": {"rouge1": 0.51, "train_seconds": 10.0}}}
    assert metric_differences(first, changed) == [
        "single_task.full.rouge1: 0.5 != 0.51", "zero_shot: {'rouge1': 0.2} != None"]
