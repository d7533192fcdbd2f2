"""Fine-tuning on the target task: the pairs runs train and validate on, and the cached single-task runs.

Runs are cached under ``results/<profile>/runs/`` (:mod:`utils.training`), so a notebook that needs an
earlier notebook's model loads it, or trains it itself under the active profile.
"""

from __future__ import annotations

from utils import data, templates, training
from utils.config import Profile
from utils.scoring import EVAL_TEMPLATE
from utils.tasks import TARGET_TASK


def summarization_training_data(profile: Profile, split: str = "train"):
    """The target task as prompt/target pairs: each dialogue rendered with one of the training
    summarization templates (the held-out template and inverted templates excluded)."""
    rows = data.load_target(profile)[split]
    chosen = templates.training_templates(TARGET_TASK, include_inverted=False)
    return templates.apply_template(rows, chosen, seed=profile.seed)


def validation_pairs(profile: Profile):
    """A few validation dialogues with the evaluation prompt, for the validation loss/ROUGE curve."""
    rows = data.load_target(profile)["validation"]
    rows = rows.select(range(min(profile.n_validation, len(rows))))
    return templates.apply_template(rows, templates.get_template(TARGET_TASK, EVAL_TEMPLATE), seed=profile.seed)


def run_name(method: str) -> str:
    """The name of a single-task run (lesson 03 names its runs so in its cells: ``single_task_full``...)."""
    return f"single_task_{method}"


def single_task_run(method: str, profile: Profile, learning_rate: float | None = None,
                    force: bool = False) -> training.TrainedRun:
    """Fine-tune on dialogue summarization alone (``full`` or ``lora``), or load the cached run.

    ``learning_rate`` replaces the profile's rate for the method (lesson 04 compares rates)."""
    return training.train(run_name(method), method, summarization_training_data(profile), profile,
                          validation_pairs(profile), learning_rate=learning_rate, force=force)
