"""Lesson 03's fine-tuning on the target task: training and validation pairs, runs and comparison tables."""

from __future__ import annotations

import pandas as pd

from utils import data, templates, training
from utils.config import Profile
from utils.scoring import EVAL_TEMPLATE, saved_scores


def summarization_training_data(profile: Profile):
    """The target task's training dialogues as prompt/target pairs, each with one of the training templates
    (the held-out and inverted templates excluded)."""
    chosen = templates.training_templates(data.TARGET_TASK, include_inverted=False)
    return templates.apply_template(data.load_target(profile)["train"], chosen, seed=profile.seed)


def validation_pairs(profile: Profile):
    """A few validation dialogues with the evaluation prompt, for the validation curves."""
    rows = data.load_target(profile)["validation"]
    rows = rows.select(range(min(profile.n_validation, len(rows))))
    template = templates.get_template(data.TARGET_TASK, EVAL_TEMPLATE)
    return templates.apply_template(rows, template, seed=profile.seed)


def run_name(method: str) -> str:
    """The name of a single-task run, as lesson 03's cells name it."""
    return f"single_task_{method}"


def single_task_run(method: str, profile: Profile, learning_rate: float | None = None) -> training.TrainedRun:
    """Fine-tune on dialogue summarization alone (``full`` or ``lora``), or load the cached run."""
    return training.train(run_name(method), method, summarization_training_data(profile), profile,
                          validation_pairs(profile), learning_rate=learning_rate)


_SCORE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
                "fact_recall": "fact recall", "grounding": "grounding"}


def fine_tuning_table(scores: dict[str, dict], runs: dict[str, training.TrainedRun]) -> pd.DataFrame:
    """One row per model: its scores in percent with their 95% CI, trainable parameters, training time,
    checkpoint size and summary length. A model without a run (the zero-shot base) trained nothing."""
    rows = {}
    for name, s in scores.items():
        run = runs.get(name)
        rows[name] = {label: f"{100 * s[r]:.1f} [{100 * s[f'{r}_ci_low']:.1f}, {100 * s[f'{r}_ci_high']:.1f}]"
                      for r, label in _SCORE_NAMES.items() if r in s}
        rows[name].update({"trainable params": run.summary["parameters"]["trainable"] if run else 0,
                           "trainable %": 100 * run.trainable_fraction if run else 0.0,
                           "train time (s)": run.summary["train_seconds"] if run else float("nan"),
                           "checkpoint (MB)": run.summary["checkpoint_mb"] if run else float("nan"),
                           "summary words": s["gen_len_words"]})
    return pd.DataFrame.from_dict(rows, orient="index")


def side_by_side(outputs: dict[str, pd.DataFrame], ids: list[str]) -> pd.DataFrame:
    """The dialogues ``ids`` with their first reference and each model's summary (one column per model);
    ``outputs``: per model, a table as :func:`utils.scoring.evaluate_summarization` returns it."""
    first = next(iter(outputs.values())).set_index("id").loc[ids]
    columns = {name: output.set_index("id").loc[ids, "prediction"] for name, output in outputs.items()}
    return pd.DataFrame({"dialogue": first["dialogue"], "reference": first["references"].map(lambda r: r[0]),
                         **columns})


def single_task_metrics(runs: dict[str, training.TrainedRun], test_scores: dict[str, dict],
                        held_out_scores: dict[str, dict]) -> dict:
    """Per method: test and held-out-prompt scores, parameters, training time, checkpoint size, settings."""
    metrics = {}
    for name, run in runs.items():
        s, held, counts = test_scores[name], held_out_scores[name], run.summary["parameters"]
        metrics[name] = {
            **saved_scores(s), "n_dialogues": s["n"], "held_out_template": saved_scores(held),
            "trainable_params": counts["trainable"], "total_params": counts["total"],
            "trainable_fraction": run.trainable_fraction, "lora": run.settings.lora,
            "train_seconds": run.summary["train_seconds"], "checkpoint_mb": run.summary["checkpoint_mb"],
            "steps": run.settings.steps, "batch_size": run.settings.batch_size,
            "learning_rate": run.settings.learning_rate}
    return metrics
