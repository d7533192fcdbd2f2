"""Lesson cells that must hold up on numbers a short or diverged run can give (run alone, with stand-ins)."""

from __future__ import annotations

from types import SimpleNamespace

import nbformat
import pytest

from utils.course import NOTEBOOK_DIR


def _cell(notebook: str, marker: str) -> str:
    """The source of the one code cell of ``notebook`` that contains ``marker``."""
    cells = [c.source for c in nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells
             if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"{notebook}: {len(cells)} cells contain {marker!r}"
    return cells[0]


@pytest.mark.parametrize("full_rouge1", [0.0, 0.4])
def test_lesson_03_compares_lora_with_full_even_when_full_scores_zero(full_rouge1, capsys):
    run = SimpleNamespace(trainable_fraction=0.05, summary={"checkpoint_mb": 1.0})
    names = {"full_scores": {"rouge1": full_rouge1}, "lora_scores": {"rouge1": 0.2}, "zero_shot": {"rouge1": 0.1},
             "lora": run, "full": run}
    exec(_cell("03_single_task_finetuning.ipynb", "share = ("), names)  # a diverged run: ROUGE-1 exactly 0
    out = capsys.readouterr().out
    assert ("cannot be a yardstick" in out) == (full_rouge1 == 0) and "LoRA trained 5.00%" in out
