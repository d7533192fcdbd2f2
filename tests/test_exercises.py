"""Exercises in every lesson: the course's four-cell format, and self-checks that fail
on a wrong answer and pass on a right one (run here with stand-ins, in seconds)."""

from __future__ import annotations

import re

import nbformat
import pandas as pd
import pytest

from utils.course import NOTEBOOK_DIR

NOTEBOOKS = ("00_welcome_and_data.ipynb", "01_zero_shot_baseline.ipynb", "02_prompt_templates.ipynb",
             "03_single_task_finetuning.ipynb", "06_putting_it_all_together.ipynb",
             "bonus_how_the_tiny_model_was_made.ipynb")
#: How many exercises each notebook has (06 gets two that use its models: a pipeline and a fact check).
EXPECTED = {"00_welcome_and_data.ipynb": 1, "01_zero_shot_baseline.ipynb": 2, "02_prompt_templates.ipynb": 2,
            "03_single_task_finetuning.ipynb": 3, "06_putting_it_all_together.ipynb": 2, "bonus_how_the_tiny_model_was_made.ipynb": 1}
HEADING = re.compile(r"^### Exercise (\d+): \S")
NOT_ATTEMPTED = ("Exercise {n}: not attempted yet. Fill in the cell above and run this one again, or expand the "
                 "solution below.")


def _cells(notebook: str) -> list:
    return nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells


def _exercises(notebook: str) -> dict[int, list]:
    """Exercise number -> its four cells (heading, starter, self-check, solution)."""
    cells = _cells(notebook)
    found = {}
    for i, cell in enumerate(cells):
        match = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if match:
            found[int(match[1])] = cells[i:i + 4]
    return found


def _cell(notebook: str, n: int, which: int) -> str:
    return _exercises(notebook)[n][which].source


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_exercise_has_the_four_cells_in_order(notebook):
    exercises = _exercises(notebook)
    assert sorted(exercises) == list(range(1, EXPECTED[notebook] + 1)), f"{notebook}: exercises {sorted(exercises)}"
    for n, (heading, starter, check, solution) in exercises.items():
        where = f"{notebook}, exercise {n}"
        assert heading.cell_type == "markdown" and len(heading.source.splitlines()) > 2, f"{where}: state the task"
        assert [starter.cell_type, check.cell_type, solution.cell_type] == ["code"] * 3, where
        assert starter.source.splitlines()[0] == f"# Exercise {n}: your turn", where
        assert re.search(r"^\w+ = \.\.\.", starter.source, re.M), f"{where}: placeholders are set to ..."
        assert check.source.splitlines()[0] == "# Self-check", where
        assert f"def check_exercise_{n}(" in check.source, where
        assert f'print("Exercise {n} checks passed.")' in check.source, where
        assert NOT_ATTEMPTED.format(n=n) in check.source, where
        assert "assert " in check.source, f"{where}: the check must be able to fail"
        assert solution.source.splitlines()[0] == "# Solution (expand to read)", where
        assert solution.metadata.get("tags") == ["solution"], where
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, where
        assert re.search(rf"^check_exercise_{n}\(", solution.source, re.M), f"{where}: the solution calls the check"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_starter_cell_leaves_its_answers_as_ellipsis(notebook):
    for n, (_, starter, check, _) in _exercises(notebook).items():
        answers = re.findall(r"^(\w+) = \.\.\.", starter.source, re.M)
        assert answers, f"{notebook}, exercise {n}: no answer left as ..."
        condition = re.search(r"^if (.*?):\n    print\(", check.source, re.M | re.S)
        assert condition and "is ..." in condition[1], f"{notebook}, exercise {n}: no 'not attempted' branch"
        missing = [name for name in answers if not re.search(rf"\b{name}\b", condition[1])]
        assert not missing, f"{notebook}, exercise {n}: the self-check does not look at {missing}"
        assert len(starter.source.splitlines()) <= 12, f"{notebook}, exercise {n}: a starter is short"


def _run_check(notebook: str, n: int, names: dict) -> dict:
    """The self-check cell of exercise ``n``, run with ``names``; returns them with ``check_exercise_n`` defined."""
    names = {"pd": pd, **names}
    exec(_cell(notebook, n, 2), names)
    return names


class _WordTokenizer:  # a stand-in: one token per word, plus </s>
    def __call__(self, text):
        return {"input_ids": text.split() + ["</s>"]}


def test_lesson_00_check_fails_on_wrong_answers_and_passes_the_right_one(capsys):
    train = pd.DataFrame({"topic": ["a", "a", "b", "c"],
                          "dialogue": ["one two three", "one two three four five", "x", "p q"]})
    names = _run_check("00_welcome_and_data.ipynb", 1, {"train": train, "tokenizer": _WordTokenizer(),
                                                        "tokens_by_topic": ...})
    assert "not attempted yet" in capsys.readouterr().out
    check = names["check_exercise_1"]
    right = pd.Series({"a": 5.0, "c": 3.0, "b": 2.0})
    check(right)
    assert "Exercise 1 checks passed." in capsys.readouterr().out
    for wrong in (right.sort_values(), right.drop("b"), pd.Series({"a": 4.0, "c": 3.0, "b": 2.0}), right.to_dict()):
        with pytest.raises(AssertionError):
            check(wrong)


def test_the_bonus_check_fails_on_a_wrong_fill_in_and_passes_the_solution(capsys):
    from transformers import AutoTokenizer

    from utils import data
    from utils.config import TINY_MODEL_DIR, get_profile
    from utils.world import tiny_flan

    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    tiny = get_profile("tiny")
    names = _run_check("bonus_how_the_tiny_model_was_made.ipynb", 1,
                       {"data": data, "tiny": tiny, "tiny_flan": tiny_flan, "tokenizer": tokenizer, "fill_in": ...})
    check = names["check_exercise_1"]
    for wrong in (lambda model_input, target: model_input, lambda model_input, target: model_input + target,
                  lambda model_input, target: None):
        with pytest.raises(AssertionError):
            check(wrong)
    solution = _cell("bonus_how_the_tiny_model_was_made.ipynb", 1, 3)
    exec(solution, {**names, "re": re, "dialogue": data.load_target(tiny)["train"][0]["dialogue"]})
    assert "Exercise 1 checks passed." in capsys.readouterr().out


def test_lesson_06_fact_check_fails_on_wrong_answers_and_passes_the_right_one(capsys):
    from utils import evaluation

    models = {"base": None, "tuned": None}
    names = _run_check("06_putting_it_all_together.ipynb", 2,
                       {"evaluation": evaluation, "models": models, "my_dialogue": ..., "my_facts": ..., "my_table": ...,
                        "my_recall": ...})
    assert "not attempted yet" in capsys.readouterr().out
    check = names["check_exercise_2"]
    dialogue = ("#Person1#: Hi, this is Maria.\n#Person2#: Hello Maria, what can I do?\n"
                "#Person1#: Book me for Thursday at 3:30 pm.\n#Person2#: Done, see you Thursday.")
    my_facts = ["Maria", "Thursday", "3:30 pm"]
    table = pd.DataFrame({"model": ["base", "tuned"],
                          "summary": ["Ethan books a table.", "Maria books Thursday at 3:30 pm."]})
    right = {"base": 0.0, "tuned": 1.0}
    check(dialogue, my_facts, table, right)
    assert "Exercise 2 checks passed." in capsys.readouterr().out
    wrong_answers = [
        (dialogue, my_facts, table, {"base": 1.0, "tuned": 1.0}),  # a recall that is not the summary's
        (dialogue, [*my_facts, "Friday"], table, right),  # a fact the dialogue does not state
        (dialogue.replace("#Person2#:", "Bob:"), my_facts, table, right),  # turns not in the course's format
        ("#Person1#: Maria, Thursday, 3:30 pm?", my_facts, table, right),  # one turn
        (dialogue, my_facts, table.iloc[:1], {"base": 0.0}),  # a model left out
    ]
    for answer in wrong_answers:
        with pytest.raises(AssertionError):
            check(*answer)


def test_the_full_profile_facts_of_lesson_06_come_from_the_profile_object():
    source = "\n".join(c.source for c in _cells("06_putting_it_all_together.ipynb"))
    assert 'config.PROFILES["full"]' in source and "named_budget" in source
    assert "1e-5 for 10 epochs" not in source


def test_lesson_01_scores_with_evaluate_load_in_the_open():
    source = "\n".join(c.source for c in _cells("01_zero_shot_baseline.ipynb") if c.cell_type == "code")
    assert 'evaluate.load("rouge")' in source and "rouge.compute(predictions=" in source


def test_lesson_01s_evaluate_call_works_offline_from_the_course_folder(tmp_path, monkeypatch):
    import contextlib

    import evaluate

    from utils import evaluation

    monkeypatch.chdir(tmp_path)  # wherever the notebook runs
    with contextlib.chdir(evaluation.ROUGE_DIR.parent):
        rouge = evaluate.load("rouge")
    scores = rouge.compute(predictions=["the cat sat"], references=["the cat sat down"], use_stemmer=True)
    same = evaluation.score_summaries(["the cat sat"], [["the cat sat down"]])
    assert scores["rouge1"] == pytest.approx(same["rouge1"])
