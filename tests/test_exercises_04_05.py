"""Lessons 04 and 05's exercises follow the course's format: task, starter, self-check, collapsed solution."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from utils.course import NOTEBOOK_DIR

LESSONS = ("04_catastrophic_forgetting.ipynb", "05_multitask_instruction_tuning.ipynb")
NOT_ATTEMPTED = ("Exercise {n}: not attempted yet. Fill in the cell above and run this one again, or expand the "
                 "solution below.")


def _exercises(notebook: str) -> list[tuple[int, list]]:
    cells = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells
    found = []
    for i, cell in enumerate(cells):
        match = re.search(r"^### Exercise (\d+): \S", cell.source, re.MULTILINE) if cell.cell_type == "markdown" else None
        if match:
            found.append((int(match.group(1)), cells[i + 1: i + 4]))
    return found


@pytest.mark.parametrize("notebook", LESSONS)
def test_every_exercise_has_a_starter_a_self_check_and_a_collapsed_solution(notebook):
    exercises = _exercises(notebook)
    assert [n for n, _ in exercises] == list(range(1, len(exercises) + 1)) and len(exercises) >= 3
    for n, (starter, check, solution) in exercises:
        assert starter.cell_type == check.cell_type == solution.cell_type == "code"
        assert starter.source.splitlines()[0] == f"# Exercise {n}: your turn"
        assert "..." in starter.source and "# Solution" not in starter.source
        assert check.source.splitlines()[0] == "# Self-check"
        assert f"def check_exercise_{n}(" in check.source and f'print("Exercise {n} checks passed.")' in check.source
        assert NOT_ATTEMPTED.format(n=n) in check.source and " is ...:" in check.source
        assert solution.source.splitlines()[0] == "# Solution (expand to read)"
        assert solution.metadata.get("tags") == ["solution"]
        assert solution.metadata.get("jupyter") == {"source_hidden": True}
        assert f"check_exercise_{n}(" in solution.source
        tree = ast.parse(check.source)
        function = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
        assert any(isinstance(node, ast.Assert) and node.msg is not None for node in ast.walk(function)), \
            "the self-check asserts with messages"


@pytest.mark.parametrize("notebook, marker", [
    (LESSONS[0], "with lora.model.disable_adapter():"),
    (LESSONS[1], "datasets.concatenate_datasets("), (LESSONS[1], ".shuffle(seed="),
    (LESSONS[1], "multi_trainer = Seq2SeqTrainer("), (LESSONS[1], "replay_trainer = Seq2SeqTrainer("),
    (LESSONS[1], "multi_trainer.train(resume_from_checkpoint=run.resume_from)"),
    (LESSONS[1], "replay_trainer.train(resume_from_checkpoint=run.resume_from)"),
])
def test_the_lessons_show_the_library_calls_they_teach(notebook, marker):
    sources = [c.source for c in nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells if c.cell_type == "code"]
    assert any(marker in source for source in sources)
