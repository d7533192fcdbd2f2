"""Lesson 03's comparison of fine-tuned models: the table of scores and costs, and its metrics.json section.

Also the models' outputs side by side; the scores themselves come from :mod:`utils.scoring`.
"""

from __future__ import annotations

import pandas as pd

from utils import training
from utils.scoring import saved_scores

_ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
_FACT_NAMES = {"fact_recall": "fact recall", "grounding": "grounding"}


def fine_tuning_table(scores: dict[str, dict], runs: dict[str, training.TrainedRun]) -> pd.DataFrame:
    """One row per model: ROUGE-1/2/L/Lsum, fact recall (where measured) and grounding in percent with their
    95% CI, trainable parameters, training time, checkpoint size and mean summary length. A model without a run (the zero-shot base) trained nothing."""
    rows = {}
    for name, s in scores.items():
        row = {label: f"{100 * s[r]:.1f} [{100 * s[f'{r}_ci_low']:.1f}, {100 * s[f'{r}_ci_high']:.1f}]"
               for r, label in {**_ROUGE_NAMES, **_FACT_NAMES}.items() if r in s}
        run = runs.get(name)
        row["trainable params"] = run.summary["parameters"]["trainable"] if run else 0
        row["trainable %"] = 100 * run.trainable_fraction if run else 0.0
        row["train time (s)"] = run.summary["train_seconds"] if run else float("nan")
        row["checkpoint (MB)"] = run.summary["checkpoint_mb"] if run else float("nan")
        row["summary words"] = s["gen_len_words"]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def side_by_side(outputs: dict[str, pd.DataFrame], ids: list[str]) -> pd.DataFrame:
    """The dialogues ``ids`` with their first reference and each model's summary (one column per model).

    ``outputs`` maps a model's name to a table with ``id`` and ``prediction`` columns; the first table also
    needs ``dialogue`` and ``references`` (as :func:`utils.scoring.evaluate_summarization` returns them)."""
    first = next(iter(outputs.values())).set_index("id")
    table = pd.DataFrame({"dialogue": first.loc[ids, "dialogue"],
                          "reference": [refs[0] for refs in first.loc[ids, "references"]]})
    for name, output in outputs.items():
        table[name] = output.set_index("id").loc[ids, "prediction"]
    return table


def single_task_metrics(runs: dict[str, training.TrainedRun], test_scores: dict[str, dict],
                        held_out_scores: dict[str, dict]) -> dict:
    """Per training method (``full``, ``lora``): its test scores with intervals, its scores with the held-out
    prompt, trainable parameters and fraction, training time, checkpoint size and settings."""
    metrics = {}
    for name, run in runs.items():
        scores, held = test_scores[name], held_out_scores[name]
        metrics[name] = {
            **saved_scores(scores),
            "n_dialogues": scores["n"],
            "held_out_template": saved_scores(held),
            "trainable_params": run.summary["parameters"]["trainable"],
            "total_params": run.summary["parameters"]["total"],
            "trainable_fraction": run.trainable_fraction,
            "train_seconds": run.summary["train_seconds"],
            "checkpoint_mb": run.summary["checkpoint_mb"],
            "steps": run.settings.steps, "batch_size": run.settings.batch_size,
            "learning_rate": run.settings.learning_rate, "lora": run.settings.lora,
        }
    return metrics
