"""Tests of the playground and shipping helpers (utils/playground.py), headless, on the micro model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import micro_pairs

from utils import evaluation, modeling, playground, prompting, training

DIALOGUE = "#Person1#: I want to buy a lamp, please.\n#Person2#: Here is the lamp."


@pytest.fixture
def models(micro_model_dir):
    return {"base": modeling.load_model(str(micro_model_dir)), "again": modeling.load_model(str(micro_model_dir))}


@pytest.fixture
def lora_run(micro_profile):
    return training.train("lora_merge", "lora", micro_pairs(16), micro_profile, steps=6)


def test_summarize_with_gives_one_row_per_model(models, tokenizer, micro_profile):
    table = playground.summarize_with(models, DIALOGUE, "tldr", tokenizer, micro_profile)
    assert list(table.columns) == ["model", "summary"] and list(table["model"]) == ["base", "again"]
    assert table["summary"][0] == table["summary"][1]  # same weights, greedy decoding: same text
    other = playground.summarize_with(models, DIALOGUE, "summarize_following_conversation", tokenizer,
                                      micro_profile)
    assert len(other) == 2


@pytest.mark.parametrize("dialogue,template,message", [
    ("  ", "tldr", "empty"), (DIALOGUE, "no_such_template", "choose one of"),
    (DIALOGUE, "write_dialogue_from_summary", "choose one of"),  # inverted: not a summarization template
])
def test_summarize_with_explains_bad_input(models, tokenizer, micro_profile, dialogue, template, message):
    with pytest.raises(ValueError, match=message):
        playground.summarize_with(models, dialogue, template, tokenizer, micro_profile)


def test_long_dialogue_keeps_instruction_and_cue_and_says_it_was_cut(models, tokenizer, micro_profile, monkeypatch,
                                                                     capsys):
    """The playground fits prompts by the course's rule (evaluation.fit_prompts), never the tokenizer's end cut."""
    seen = []
    generate = evaluation.generate
    monkeypatch.setattr(evaluation, "generate", lambda model, tok, prompts, *a, **k: seen.extend(prompts)
                        or generate(model, tok, prompts, *a, **k))
    long_dialogue = "\n".join(f"#Person{1 + i % 2}#: line {i} about the lamp and the price." for i in range(200))
    table = playground.summarize_with(models, long_dialogue, "summarize_following_conversation", tokenizer,
                                      micro_profile)
    assert len(table) == 2 and seen
    for prompt in seen:
        assert prompt.startswith("Summarize the following conversation.") and prompt.endswith("Summary:")
        assert "..." in prompt and len(tokenizer(prompt)["input_ids"]) <= micro_profile.max_source_length
    assert "longer than the model reads" in capsys.readouterr().out
    playground.summarize_with(models, DIALOGUE, "tldr", tokenizer, micro_profile)
    assert "longer than" not in capsys.readouterr().out  # a dialogue that fits is used whole, without a note


def test_summary_templates_include_held_out_but_not_inverted():
    names = [t.name for t in prompting.summary_templates()]
    assert "what_was_going_on" in names and "summarize_following_conversation" in names
    assert "write_dialogue_from_summary" not in names


def test_playground_panel_runs_its_callback(models, tokenizer, micro_profile, monkeypatch):
    calls = []
    table = pd.DataFrame([{"model": "again", "summary": "A lamp."}])
    monkeypatch.setattr(playground, "summarize_with", lambda *args: calls.append(args) or table)
    panel = playground.playground(models, tokenizer, micro_profile, dialogue=DIALOGUE)
    assert len(calls) == 1  # opened with the given dialogue's summaries shown
    text, (chosen, template), button = panel.children[0], panel.children[1].children, panel.children[2]
    chosen.value = ("again",)
    template.value = "tldr"
    button.click()
    (picked, dialogue, template_name, *_) = calls[-1]
    assert list(picked) == ["again"] and dialogue == text.value == DIALOGUE and template_name == "tldr"
    empty = playground.playground(models, tokenizer, micro_profile)
    assert len(calls) == 2 and empty.last is None  # no dialogue, nothing run


def test_playground_template_names_are_readable(models, tokenizer, micro_profile):
    panel = playground.playground(models, tokenizer, micro_profile)
    template = panel.children[1].children[1]
    longest = max(len(name) for name in template.options)
    assert template.layout.width.endswith("ch") and float(template.layout.width[:-2]) >= longest + 10


def test_saved_playground_reads_without_a_kernel(models, tokenizer, micro_profile):
    """A saved copy shows the panel's text/plain or text/html where no widget is drawn: not ``VBox(children=...``
    but what the panel is and the table it showed, whole."""
    panel = playground.playground(models, tokenizer, micro_profile, dialogue=DIALOGUE)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # a live kernel still draws the panel
    assert "VBox(" not in bundle["text/plain"] and "live kernel" in bundle["text/plain"]
    assert repr(panel.last) in bundle["text/plain"] and len(panel.last.table) == len(models)
    assert "<table" in bundle["text/html"] and all(f">{name}</td>" in bundle["text/html"] for name in models)


def test_side_by_side_shows_whole_summaries_left_aligned():
    long = "#Person1# books a table for four at the Italian place on Friday at 7 pm, " * 3 + "<b>"
    table = pd.DataFrame([{"model": "base", "summary": long}, {"model": "multi-task", "summary": "Short."}])
    shown = playground.side_by_side(table)
    with pd.option_context("display.max_colwidth", 120):  # as the lessons set it (utils.notebook)
        page = shown._repr_html_()
    assert long.replace("<b>", "&lt;b&gt;") in page and "<b>" not in page  # whole, and escaped
    assert "text-align: left" in page and "text-align: right" not in page
    assert repr(shown).splitlines() == [f"base        {long}", "multi-task  Short."]


def test_merged_lora_is_a_standalone_model_with_the_same_outputs(lora_run, tokenizer, micro_profile, tmp_path):
    folder = tmp_path / "merged"  # lesson 06's recipe: a fresh base plus the saved adapter, merged and saved
    training.load_checkpoint(lora_run.path / "final", "lora", micro_profile.model).merge_and_unload().save_pretrained(
        folder)
    assert list(folder.glob("*.safetensors")) and not (folder / "adapter_config.json").exists()
    merged = modeling.load_model(str(folder))  # plain transformers: no PEFT needed
    prompts = [playground.summary_prompt(DIALOGUE)]
    assert playground.same_logits(lora_run.model, merged, tokenizer, prompts)
    base = modeling.load_model(micro_profile.model)
    assert not playground.same_logits(base, merged, tokenizer, prompts)  # the adapter's change is in it


def test_round_trip_reloads_the_same_model(lora_run, tokenizer, micro_profile):
    check = playground.round_trip("lora", lora_run.model, lora_run.path / "final", tokenizer, [DIALOGUE],
                                  micro_profile, method="lora", base_model=micro_profile.model)
    assert check["same_summaries"] and check["same_logits"]
    base = modeling.load_model(micro_profile.model)
    wrong = playground.round_trip("base vs lora", base, lora_run.path / "final", tokenizer, [DIALOGUE],
                                  micro_profile, method="lora", base_model=micro_profile.model)
    assert not wrong["same_logits"]


def test_read_dialogues_from_jsonl_and_text(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "dialogue": DIALOGUE}) + "\n\n" + json.dumps({"dialogue": "x: y"}) + "\n")
    rows = playground.read_dialogues(jsonl)
    assert [r["id"] for r in rows] == ["a", "d_1"] and rows[0]["dialogue"] == DIALOGUE
    text = tmp_path / "d.txt"
    text.write_text(f"{DIALOGUE}\n\n\n{DIALOGUE}\n")
    assert [r["dialogue"] for r in playground.read_dialogues(text)] == [DIALOGUE, DIALOGUE]


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"), (b'{"text": "hi"}\n', "line 1: missing column.*dialogue"),
    (b'{"dialogue": "ok"}\n{"dialogue": "caf\xe9"}\n', "line 2: not UTF-8"),
    (b'{"dialogue": "ok"}\n{"dialogue": "cut in ha\n', "line 2: not valid JSON"),
    (b'{"dialogue": null}\n', "line 1: column 'dialogue' holds null; it must be text"),
    (b'{"dialogue": "  "}\n', "dialogue of row 1 is empty"),
])
def test_read_dialogues_explains_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        playground.read_dialogues(path)
    with pytest.raises(FileNotFoundError):
        playground.read_dialogues(tmp_path / "missing.jsonl")


def test_summarize_file_writes_one_summary_per_dialogue_in_order(models, tokenizer, micro_profile, tmp_path):
    rows = [{"id": f"d{i}", "dialogue": DIALOGUE.replace("lamp", item)} for i, item in enumerate(["pen", "cup"])]
    source = playground.write_dialogues(rows, tmp_path / "in.jsonl")
    table = playground.summarize_file(models["base"], tokenizer, source, tmp_path / "out.jsonl", micro_profile)
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [w["id"] for w in written] == ["d0", "d1"] == list(table["id"])
    assert all(isinstance(w["summary"], str) for w in written)
    assert written[1]["dialogue"] == rows[1]["dialogue"]
