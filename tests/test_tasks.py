"""The task registry (utils/data.py): every module asks it, so a fifth probe task is one entry plus its data."""

from __future__ import annotations

import json

import pytest

from utils import data, evaluation, forgetting, mixture, modeling, scoring, templates
from utils.config import DATA_DIR, get_profile

TOY_TEMPLATES = """\
task: colour
fields:
  id: string
  text: string
  label: string
  options: list
templates:
  - name: which_colour
    answer_choices: '{{ options | join("|||") }}'
    jinja: |-
      {{text}}
      Colour? ||| {{label}}
    metadata: {task: colour_classification, original_task: true, held_out: false, metrics: [accuracy], format: zero_shot}
  - name: colour_held_out
    answer_choices: '{{ options | join("|||") }}'
    jinja: |-
      Which colour: {{text}} ||| {{label}}
    metadata: {task: colour_classification, original_task: true, held_out: true, metrics: [accuracy], format: zero_shot}
"""
COLOURS = ["red", "blue"]


def _toy_rows(split: str, n: int) -> list[dict]:
    return [{"id": f"colour_{split}_{i}", "text": f"the {COLOURS[i % 2]} {['cup', 'hat', 'bag'][i % 3]}",
             "label": COLOURS[i % 2], "options": COLOURS} for i in range(n)]


@pytest.fixture
def colour_task(tmp_path, monkeypatch) -> data.Task:
    """A toy fifth probe, registered for this test only: its JSONL splits and template file in ``tmp_path``."""
    folder, template_dir = tmp_path / "colour", tmp_path / "templates"
    for split, n in {"train": 6, "validation": 2, "test": 5}.items():
        folder.mkdir(exist_ok=True)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _toy_rows(split, n)))
    template_dir.mkdir()
    (template_dir / "colour.yaml").write_text(TOY_TEMPLATES)
    monkeypatch.setattr(data, "TASKS", dict(data.TASKS))  # registered for this test only
    return data.register(data.Task("colour", ("id", "text", "label", "options"), "text", "label",
                                     "classification", "Name the colour.", folder, templates_dir=template_dir))


def test_a_registered_probe_is_loaded_prompted_and_scored(colour_task, micro_model_dir, micro_profile):
    assert "colour" in data.probe_names()
    test = data.load_probe("colour", micro_profile)["test"]
    assert test.column_names == list(colour_task.columns) and len(test) == 5
    assert len(mixture.task_train_split("colour", micro_profile)) == 6

    prompt, answer = scoring.probe_template("colour").render(test[0])
    assert prompt == "the red cup\nColour?" and answer == "red"
    assert templates.held_out_template("colour").name == "colour_held_out"

    perfect = evaluation.score_probe("colour", test["label"], test)
    assert perfect["main_metric"] == "accuracy" and perfect["score"] == 1.0 and perfect["valid_label_share"] == 1.0

    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    scores = forgetting.probe_scores(model, tokenizer, micro_profile, probes=("colour",))["colour"]
    assert scores["main_metric"] == "accuracy" and scores["n"] == len(test)
    assert 0 <= scores["main"] <= 1 and "valid_label_share" in scores
    shares = forgetting.valid_label_shares({"micro": {"colour": scores}})
    assert list(shares.index) == ["colour"]


def test_the_registry_is_the_one_record_of_each_probe():
    for name in data.PROBES:
        task = data.get(name)
        assert task.template_file.is_file()
        meta = json.loads((DATA_DIR / "probes" / name / "meta.json").read_text())
        assert meta == task.meta(), f"data/probes/{name}/meta.json differs from the registry: run `make data`"
        assert list(data.load_probe(name, get_profile("tiny"))["test"].column_names) == list(task.columns)
    assert data.get("topic").has_labels and not data.get("title").has_labels


def test_unknown_and_bad_tasks_are_refused_clearly():
    with pytest.raises(data.DataError, match="Unknown probe task 'colour'. Probe tasks: qa, topic, sentiment, title"):
        data.load_probe("colour", get_profile("tiny"))
    with pytest.raises(data.DataError, match="Unknown probe task 'dialogsum'"):
        data.load_probe("dialogsum", get_profile("tiny"))  # the target is a task, not a probe
    with pytest.raises(data.TaskError, match="lack \\['answer'\\]"):
        data.Task("broken", ("id", "text"), "text", "answer", "qa", "", DATA_DIR)
    with pytest.raises(data.TaskError, match="unknown task_type 'ranking'"):
        data.Task("broken", ("id", "text"), "text", "text", "ranking", "", DATA_DIR)
    with pytest.raises(data.TaskError, match="already registered"):
        data.register(data.get("qa"))
