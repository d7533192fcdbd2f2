"""Tests of the prompt-template library (utils/templates.py, data/templates/*.yaml)."""

from __future__ import annotations

import json
import pickle
import textwrap
from collections import Counter

import pytest
from datasets import Dataset, DatasetDict
from jinja2.sandbox import SecurityError

from utils.config import DATA_DIR
from utils.data import PROBES
from utils.templates import (
    Template,
    TemplateError,
    apply_template,
    get_template,
    held_out_template,
    list_tasks,
    load_templates,
    render_few_shot,
    training_templates,
)

TASKS = ("dialogsum", *PROBES)

SAMPLE_ROWS = {
    "dialogsum": [
        {"id": "train_0", "dialogue": "#Person1#: Hi, are you free tonight?\n#Person2#: Yes, let's see a film.",
         "summary": "#Person1# and #Person2# plan to see a film tonight.", "topic": "making plans"},
        {"id": "train_1", "dialogue": "#Person1#: My order is late.\n#Person2#: Sorry, it ships tomorrow.",
         "summary": "#Person2# says #Person1#'s late order ships tomorrow.", "topic": "late order"},
    ],
    "qa": [
        {"id": "qa_0", "context": "#Person1#: Where is the bank?\n#Person2#: It is next to the bakery.",
         "question": "Where is the bank?", "answer": "next to the bakery"},
        {"id": "qa_1", "context": "The museum opens at nine and closes at five.",
         "question": "When does the museum open?", "answer": "at nine"},
    ],
    "topic": [
        {"id": "topic_0", "text": "#Person1#: Two tickets to Rome, please.\n#Person2#: Window seats?",
         "label": "travel", "options": ["travel", "shopping", "health"]},
        {"id": "topic_1", "text": "#Person1#: I have a sore throat.\n#Person2#: Let me take a look.",
         "label": "health", "options": ["travel", "shopping", "health"]},
    ],
    "sentiment": [
        {"id": "sent_0", "text": "Crashes every time I open it.", "label": "negative",
         "options": ["negative", "positive"]},
        {"id": "sent_1", "text": "Fast, simple and it just works.", "label": "positive",
         "options": ["negative", "positive"]},
    ],
    "title": [
        {"id": "title_0", "text": "Crashes every time I open it. Uninstalled.", "title": "Keeps crashing"},
        {"id": "title_1", "text": "Fast, simple and it just works. Love it.", "title": "Just works"},
    ],
}

ALL_TEMPLATES = [template for task in TASKS for template in load_templates(task)]


def write_task(directory, body: str, task: str = "demo", fields: str = "{id: string, text: string, label: string}"):
    """Write a small template file ``<task>.yaml`` for bad-input tests and return its directory."""
    text = f"task: {task}\nfields: {fields}\ntemplates:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    (directory / f"{task}.yaml").write_text(text, encoding="utf-8")
    return directory


def read_jsonl(path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(n), handle, strict=False)]


# --- the library's files ------------------------------------------------------------------------------
def test_every_task_has_a_template_file():
    assert set(TASKS) <= set(list_tasks())


@pytest.mark.parametrize("template", ALL_TEMPLATES, ids=lambda t: t.id)
def test_every_template_renders_sample_rows(template):
    for row in SAMPLE_ROWS[template.task]:
        source, target = template.render(row)
        assert source and target
        assert source == source.strip() and target == target.strip()
        assert "{{" not in source and "{%" not in source and "|||" not in source
        assert target in row.values(), "a target should be one of the row's fields, copied as is"
        if template.task in ("dialogsum", "title"):  # (QA answers are spans, options are listed)
            assert target not in source, f"{template.id} gives its answer away in the input"


@pytest.mark.parametrize("task", TASKS)
def test_templates_render_real_data_when_present(task):
    path = DATA_DIR / ("dialogsum" if task == "dialogsum" else f"probes/{task}") / "train.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not built yet")
    rows = read_jsonl(path, 5)
    for template in load_templates(task):
        for row in rows:
            source, target = template.render(row)
            assert source and target
            if template.answer_choices:
                assert target in template.answer_choices_for(row)


def test_dialogsum_has_flan_like_template_counts():
    templates = load_templates("dialogsum")
    inverted = [t for t in templates if t.inverted]
    summarize = [t for t in templates if t.original_task]
    assert len(templates) >= 10
    assert len(inverted) >= 2
    assert len(summarize) >= 7
    assert {t.metadata.task for t in summarize} == {"summarization"}


@pytest.mark.parametrize("task", PROBES)
def test_probe_tasks_have_five_templates_and_an_inverted_one(task):
    templates = load_templates(task)
    assert len(templates) >= 5
    assert any(t.inverted for t in templates)


@pytest.mark.parametrize("task", TASKS)
def test_exactly_one_held_out_template_per_task(task):
    templates = load_templates(task)
    held = [t for t in templates if t.held_out]
    assert len(held) == 1
    assert held_out_template(task) == held[0]
    assert held[0].original_task
    training = training_templates(task)
    assert held[0] not in training
    assert len(training) == len(templates) - 1
    assert all(t.original_task for t in training_templates(task, include_inverted=False))


def test_names_are_unique_and_metadata_complete():
    ids = [t.id for t in ALL_TEMPLATES]
    assert len(ids) == len(set(ids))
    for template in ALL_TEMPLATES:
        assert template.metadata.task and template.metadata.metrics
        assert template.metadata.format == "zero_shot"


def test_reference_lab_prompt_is_exact():
    template = get_template("dialogsum", "summarize_following_conversation")
    assert not template.held_out
    row = SAMPLE_ROWS["dialogsum"][0]
    source, target = template.render(row)
    assert source == f"Summarize the following conversation.\n\n{row['dialogue']}\n\nSummary:"
    assert target == row["summary"]


@pytest.mark.parametrize("task", ["topic", "sentiment"])
def test_classification_templates_list_their_answer_choices(task):
    for template in load_templates(task):
        if template.inverted:
            assert template.answer_choices_for(SAMPLE_ROWS[task][0]) is None
            continue
        for row in SAMPLE_ROWS[task]:
            choices = template.answer_choices_for(row)
            source, target = template.render(row)
            assert choices == row["options"]
            assert target in choices
            assert all(choice in source for choice in choices)


def test_options_are_listed_flan_style():
    row = SAMPLE_ROWS["topic"][0]
    source, _ = get_template("topic", "which_topic_options").render(row)
    assert "OPTIONS:\n- travel\n- shopping\n- health" in source


def test_templates_pickle_for_multiprocessing():
    assert pickle.loads(pickle.dumps(ALL_TEMPLATES)) == ALL_TEMPLATES


# --- bad input ----------------------------------------------------------------------------------------
def test_sandbox_blocks_unsafe_attribute_access():
    evil = Template(name="evil", task="demo", jinja="{{ ''.__class__.__mro__ }} ||| x")
    with pytest.raises(TemplateError, match="demo/evil.*sandbox") as info:
        evil.render({"id": "1"})
    assert isinstance(info.value.__cause__, SecurityError)


def test_sandbox_blocks_mutating_rows():
    mutating = Template(name="mutating", task="demo", jinja="{{ options.append('x') }} ||| y")
    row = {"options": ["a"]}
    with pytest.raises(TemplateError, match="sandbox"):
        mutating.render(row)
    assert row["options"] == ["a"]


def test_unsafe_template_fails_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: evil
          jinja: "{{ text.__class__.__mro__ }} ||| {{label}}"
        """)
    with pytest.raises(TemplateError, match=r"demo\.yaml.*demo/evil.*sandbox"):
        load_templates("demo", tmp_path)


def test_undefined_variable_names_template_variable_and_fields():
    typo = Template(name="typo", task="dialogsum", jinja="Summarize: {{dialog}} ||| {{summary}}")
    with pytest.raises(TemplateError) as info:
        typo.render(SAMPLE_ROWS["dialogsum"][0])
    message = str(info.value)
    for expected in ("dialogsum/typo", "'dialog'", "train_0", "dialogue, id, summary, topic"):
        assert expected in message


def test_undefined_variable_fails_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: typo
          jinja: "{{txt}} ||| {{label}}"
        """)
    with pytest.raises(TemplateError, match=r"demo\.yaml.*demo/typo.*'txt'.*id, text, label"):
        load_templates("demo", tmp_path)


def test_empty_target_names_template():
    template = get_template("dialogsum", "tldr")
    row = {**SAMPLE_ROWS["dialogsum"][0], "summary": "   "}
    with pytest.raises(TemplateError, match=r"dialogsum/tldr.*target rendered empty.*train_0"):
        template.render(row)


def test_empty_target_fails_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: no_target
          jinja: "{{text}} |||"
        """)
    with pytest.raises(TemplateError, match=r"demo\.yaml.*demo/no_target.*target rendered empty"):
        load_templates("demo", tmp_path)


def test_missing_separator_fails_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: no_separator
          jinja: "{{text}} {{label}}"
        """)
    with pytest.raises(TemplateError, match=r"demo\.yaml.*demo/no_separator.*0 '\|\|\|'"):
        load_templates("demo", tmp_path)


def test_duplicate_names_fail_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: same
          jinja: "{{text}} ||| {{label}}"
        - name: same
          jinja: "Text: {{text}} ||| {{label}}"
        """)
    with pytest.raises(TemplateError, match=r"demo\.yaml.*'same' appears twice"):
        load_templates("demo", tmp_path)


def test_bad_metadata_fails_at_load(tmp_path):
    write_task(tmp_path, """\
        - name: misspelt
          jinja: "{{text}} ||| {{label}}"
          metadata: {held-out: true}
        """)
    with pytest.raises(TemplateError, match="unknown metadata key.*held-out"):
        load_templates("demo", tmp_path)


def test_unknown_task_lists_available_tasks():
    with pytest.raises(TemplateError, match="Available tasks: .*dialogsum.*sentiment"):
        load_templates("dialogsumm")


def test_unknown_template_name_suggests_close_match():
    with pytest.raises(TemplateError, match="Did you mean 'tldr'"):
        get_template("dialogsum", "tl_dr")


def test_missing_field_in_real_row_says_what_to_do():
    template = get_template("sentiment", "review_sentiment_options")
    with pytest.raises(TemplateError, match=r"'options'.*available fields are: id, label, text.*rename_column"):
        template.render({"id": "s", "text": "Nice.", "label": "positive"})


# --- applying to data sets ----------------------------------------------------------------------------
def dialogsum_dataset(n: int = 30) -> Dataset:
    base = SAMPLE_ROWS["dialogsum"]
    return Dataset.from_list([{**base[i % 2], "id": f"train_{i}"} for i in range(n)])


def test_apply_one_template_with_datasets_map():
    template = get_template("dialogsum", "summarize_following_conversation")
    ds = dialogsum_dataset(4)
    out = apply_template(ds, template)
    assert {"source", "target", "template", "dialogue"} <= set(out.column_names)
    assert out.num_rows == ds.num_rows
    for row, rendered in zip(ds, out, strict=True):
        assert (rendered["source"], rendered["target"]) == template.render(row)
        assert rendered["template"] == template.name


def test_apply_several_templates_balanced_and_reproducible():
    templates = training_templates("dialogsum")
    ds = dialogsum_dataset(len(templates) * 3)
    first = apply_template(ds, templates, seed=1, keep_columns=False)
    again = apply_template(ds, templates, seed=1)
    other = apply_template(ds, templates, seed=2)
    assert set(first.column_names) == {"source", "target", "template"}
    assert first["template"] == again["template"]
    assert first["template"] != other["template"]
    assert Counter(first["template"]) == {t.name: 3 for t in templates}
    by_name = {t.name: t for t in templates}
    for row, rendered in zip(ds, first, strict=True):
        assert (rendered["source"], rendered["target"]) == by_name[rendered["template"]].render(row)


def test_apply_template_on_rows_without_targets_and_on_a_dataset_dict():
    template = held_out_template("dialogsum")
    grouped = Dataset.from_list([{"id": "test_0", "dialogue": "#Person1#: Hi.", "references": ["a", "b"]}])
    out = apply_template(DatasetDict({"test": grouped}), template, with_target=False)
    assert out["test"][0]["source"] == template.render_source(grouped[0])
    assert "target" not in out["test"].column_names
    with pytest.raises(TemplateError, match="'summary'"):
        template.render(grouped[0])


def test_apply_template_needs_templates():
    with pytest.raises(TemplateError, match="no templates"):
        apply_template(dialogsum_dataset(2), [])


# --- few-shot -----------------------------------------------------------------------------------------
def test_render_few_shot_joins_exemplars_then_query():
    template = get_template("dialogsum", "summarize_following_conversation")
    shot, query = SAMPLE_ROWS["dialogsum"]
    source, target = render_few_shot(template, [shot], query)
    shot_source, shot_target = template.render(shot)
    query_source, query_target = template.render(query)
    assert source == f"{shot_source}\n{shot_target}\n\n{query_source}"
    assert target == query_target
    assert source.count("Summary:") == 2


def test_render_few_shot_picks_a_delimiter_reproducibly():
    template = get_template("title", "give_title")
    shot, query = SAMPLE_ROWS["title"]
    delimiters = ["\n\n", "\n###\n", "\n---\n"]
    picked = {render_few_shot(template, [shot], query, delimiter=delimiters, seed=s)[0] for s in range(20)}
    assert len(picked) > 1
    assert all(any(d in source for d in delimiters) for source in picked)
    assert render_few_shot(template, [shot], query, delimiters, seed=3) == render_few_shot(
        template, [shot], query, delimiters, seed=3)


def test_render_few_shot_refuses_the_query_as_a_shot():
    template = get_template("qa", "read_and_answer")
    row = SAMPLE_ROWS["qa"][0]
    with pytest.raises(TemplateError, match="query row itself"):
        render_few_shot(template, [row], row)


# --- the render budget ----------------------------------------------------------------------------------
def test_budget_leaves_ordinary_templates_alone():
    template = Template(name="loops", task="demo", jinja=(
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ lipsum(1, min=5, max=6) }} {{ '%5s' % text }}"
        "{{ '-' * 10 }}{{ text | center(20) }}{% for c in options %}{{ c }}{% endfor %} ||| {{ label }}"))
    source, target = template.render({"id": "1", "text": "hi", "label": "a", "options": ["a", "b"]})
    assert source.startswith("012 ") and "   hi" in source and "----------" in source and source.endswith("ab")
    assert target == "a"


@pytest.mark.parametrize("jinja,found", [
    ("{{ 'ab'.ljust(10**9) }}", "str.ljust()"),
    ("{{ '{:>999999999}'.format('x') }}", "format string"),
    ("{{ '%999999999s' % 'x' }}", "format string"),
    ("{{ 'x' | center(10**9) }}", "do_center"),
    ("{{ 10 ** (10 ** 10) }}", "power"),
    ("{{ [1, 2] * 10**6 }}", "repetition"),
    ("{{ '%.999999999f' % 1 }}", "format string"),
    ("{% for i in range(10000) %}{{ text * 100 }}{% endfor %}", "output passed 200,000"),
    ("{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}", "'~'"),
    ("{{ ([text * 100000] * 1000) | join }}", "do_join"),
    ("{{ ''.join([text * 100000] * 1000) }}", "str.join()"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", "more than 2 s"),
])
def test_budget_stops_templates_that_grow_without_bound(jinja, found):
    template = Template(name="greedy", task="demo", jinja=f"{jinja} ||| {{{{ label }}}}")
    with pytest.raises(TemplateError, match="demo/greedy. went over its rendering budget") as info:
        template.render({"id": "1", "text": "hi", "label": "a"})
    assert found in str(info.value)


def test_error_messages_quote_huge_values_briefly(tmp_path):
    typo = Template(name="typo", task="demo", jinja="{{ txt }} ||| {{ label }}")
    with pytest.raises(TemplateError) as info:
        typo.render({"id": "x" * 10**6, "text": "hi", "label": "a"})
    assert "demo/typo" in str(info.value) and len(str(info.value)) < 600
    (tmp_path / "demo.yaml").write_text("task: demo\nfields: {text: string}\ntemplates:\n  - "
                                        + json.dumps(list(range(10**5))) + "\n")
    with pytest.raises(TemplateError, match="needs a 'name'") as info:
        load_templates("demo", tmp_path)
    assert len(str(info.value)) < 600


@pytest.mark.parametrize("fields", [{"jinja": 123}, {"jinja": "{{text}} ||| {{label}}", "answer_choices": ["a"]}])
def test_template_text_that_is_not_text_is_named(fields):
    with pytest.raises(TemplateError, match=r"demo/odd': '(jinja|answer_choices)' must be text.*(int 123|list \['a'\])"):
        Template(name="odd", task="demo", **fields)
