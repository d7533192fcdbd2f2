"""The calls each lesson teaches are in its cells (issue 30): a learner reads and changes them there."""

from __future__ import annotations

import nbformat
import pytest

from utils.config import ROOT
from utils.course import NOTEBOOK_DIR

#: notebook -> calls that must appear in its code cells.
TAUGHT = {
    "01_zero_shot_baseline.ipynb": ["evaluate.load(", ".compute(predictions="],
    "03_single_task_finetuning.ipynb": ["Seq2SeqTrainer(", "Seq2SeqTrainingArguments(", "DataCollatorForSeq2Seq(",
                                        ".map(preprocess", "get_peft_model(", "LoraConfig(", "evaluate.load(",
                                        "trainer.train(resume_from_checkpoint=run.resume_from)"],
    "04_catastrophic_forgetting.ipynb": ["disable_adapter("],
}


def _code(notebook: str) -> str:
    return "\n".join(c.source for c in nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells
                     if c.cell_type == "code")


@pytest.mark.parametrize("notebook", TAUGHT)
def test_the_calls_a_lesson_teaches_are_in_its_cells(notebook):
    code = _code(notebook)
    missing = [call for call in TAUGHT[notebook] if call not in code]
    assert not missing, f"{notebook} does not show {missing}"


def test_no_recipe_checker_polices_the_lessons():
    """The run cache is keyed by what a trainer runs, so nothing compares a lesson's trainer with a copy."""
    source = "\n".join(p.read_text() for p in (ROOT / "utils").rglob("*.py"))
    for name in ("recipe_differences", "RecipeMismatch", "_fresh_fingerprint", "run_cached", "CourseSeq2SeqTrainer"):
        assert name not in source, name
