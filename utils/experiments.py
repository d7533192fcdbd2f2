"""The course's experiments, one call each, shared by every notebook that needs them.

Comparisons are like with like: every model is scored on the same test dialogues, with the same prompt
(:data:`EVAL_TEMPLATE`, the reference lab's) and the same generation config. Training runs are cached under
``results/<profile>/runs/``, so a notebook that needs an earlier notebook's model loads it, or trains it
itself under the active profile.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import pandas as pd

from utils import data, evaluation, tasks, templates, training
from utils.config import Profile, get_profile
from utils.tasks import PROBES, TARGET_TASK

#: The prompt every model is scored with on the target task: the reference lab's, word for word.
EVAL_TEMPLATE = "summarize_following_conversation"


def target_test(profile: Profile | None = None):
    """The target test split, one row per dialogue with its list of ``references``, cut to the profile."""
    profile = profile or get_profile()
    grouped = data.group_references(data.load_target(profile)["test"])
    if profile.n_eval_dialogues:
        grouped = grouped.select(range(min(profile.n_eval_dialogues, len(grouped))))
    return grouped


ELLIPSIS = " ..."


def fit_prompts(template: templates.Template, rows: Sequence[Mapping], field: str, tokenizer,
                limit: int) -> tuple[list[str], list[int]]:
    """Render each row's prompt; where one has more than ``limit`` tokens, cut the end of the row's ``field``
    (marked with "...") until it fits, so the instruction and the cue at the end ("Summary:") stay whole.

    Returns the prompts and the indices of the rows that were shortened (a warning says how many). A few
    DialogSum test dialogues are longer than FLAN-T5's 512 tokens; the reference lab lets the tokenizer cut
    the *prompt's* end, which drops the instruction with it.
    """
    prompts = [template.render_source(row) for row in rows]
    lengths = evaluation.prompt_lengths(tokenizer, prompts)
    shortened = [i for i, n in enumerate(lengths) if n > limit]
    for i in shortened:
        row = dict(rows[i])
        ids = tokenizer(str(row[field]), add_special_tokens=False)["input_ids"]
        keep, length = len(ids), lengths[i]
        while length > limit:
            keep -= length - limit + 2  # room for the ellipsis
            if keep < 1:
                raise evaluation.PromptTooLongError([(i, lengths[i])], limit, len(prompts))
            row[field] = tokenizer.decode(ids[:keep], skip_special_tokens=True).rstrip() + ELLIPSIS
            prompts[i] = template.render_source(row)
            length = evaluation.prompt_lengths(tokenizer, [prompts[i]])[0]
    if shortened:
        warnings.warn(f"{len(shortened)} of {len(prompts)} prompts were longer than max_source_length={limit} "
                      f"tokens; the end of their {field} was cut (marked '...') so the instruction stays whole.",
                      stacklevel=3)
    return prompts, shortened


def _summarize(model, tokenizer, dialogues: Sequence[str], profile: Profile, template_name: str,
               desc: str) -> tuple[list[str], list[int]]:
    template = templates.get_template(TARGET_TASK, template_name)
    rows = [{"dialogue": d, "summary": "", "id": "", "topic": ""} for d in dialogues]
    prompts, shortened = fit_prompts(template, rows, tasks.get(TARGET_TASK).long_field, tokenizer,
                                     profile.max_source_length)
    outputs = evaluation.generate(model, tokenizer, prompts, evaluation.generation_config(profile),
                                  batch_size=profile.eval_batch_size, max_source_length=profile.max_source_length,
                                  desc=desc)
    return outputs, shortened


def summarize(model, tokenizer, dialogues: list[str], profile: Profile | None = None,
              template_name: str = EVAL_TEMPLATE, desc: str = "Summarizing") -> list[str]:
    """Summaries of ``dialogues`` with one template and the course's generation config (a dialogue too long
    for the model loses its end, with a warning: see :func:`fit_prompts`)."""
    return _summarize(model, tokenizer, dialogues, profile or get_profile(), template_name, desc)[0]


def evaluate_summarization(model, tokenizer, profile: Profile | None = None, template_name: str = EVAL_TEMPLATE,
                           desc: str = "Summarizing") -> tuple[dict, pd.DataFrame]:
    """Score ``model`` on the target test split: ROUGE and the fact measures with bootstrap CIs, and a table
    of its outputs.

    Beside ROUGE, ``grounding`` (always) and ``fact_recall`` (where the data records facts), see
    :func:`score_outputs`. The table has one row per dialogue (``dialogue``, ``prediction``, ``references``)
    plus per-example ROUGE and fact columns, ready for paired comparisons between models.
    ``scores["n_shortened"]`` counts the dialogues cut to fit the model (see :func:`fit_prompts`).
    """
    profile = profile or get_profile()
    test = target_test(profile)
    predictions, shortened = _summarize(model, tokenizer, test["dialogue"], profile, template_name, desc)
    scores, table = score_outputs(predictions, test, profile)
    scores["n_shortened"] = len(shortened)
    return scores, table


def score_outputs(predictions: Sequence[str], test, profile: Profile | None = None) -> tuple[dict, pd.DataFrame]:
    """Score summaries of the grouped ``test`` dialogues (a model's, or a baseline's such as
    :func:`utils.evaluation.lead_summaries`): ROUGE against all references (:func:`evaluation.score_summaries`)
    and, beside it, :func:`evaluation.score_facts` (fact recall only when ``test`` has ``facts``).

    Returns the scores and a table: ``id``, ``dialogue``, ``prediction``, ``references``, per-example ROUGE,
    ``grounding`` and ``fact_recall`` (where known)."""
    profile = profile or get_profile()
    references = test["references"]
    facts = test["facts"] if "facts" in test.column_names else None
    rouge = evaluation.rouge_per_example(predictions, references)
    scores = evaluation.rouge_summary(rouge, predictions, seed=profile.seed)
    scores.update(evaluation.score_facts(predictions, test["dialogue"], facts, seed=profile.seed))
    table = pd.DataFrame({"id": test["id"], "dialogue": test["dialogue"], "prediction": predictions,
                          "references": references})
    for name, values in rouge.items():
        table[name] = values
    per_fact = evaluation.facts_per_example(predictions, test["dialogue"], facts)
    table["grounding"] = per_fact["grounding"]
    if facts is not None:
        table["facts"], table["fact_recall"] = list(facts), per_fact["fact_recall"]
    return scores, table


def explain_output(row: Mapping) -> str:
    """A scored output (a row of :func:`score_outputs`' table) as text to read: the dialogue, the output, the
    references, its ROUGE-1, fact recall (where known) and grounding, the recorded facts it misses and the
    specifics it names that the dialogue does not."""
    from utils import facts as fact_rules

    lines = [row["dialogue"], "", f"{'output':>12}: {row['prediction']}"]
    lines += [f"{f'reference {i}':>12}: {ref}" for i, ref in enumerate(row["references"], 1)]
    measures = [f"ROUGE-1 {row['rouge1']:.3f}"]
    if "fact_recall" in row and pd.notna(row.get("fact_recall")):
        measures.append(f"fact recall {row['fact_recall']:.2f}")
    measures.append(f"grounding {row['grounding']:.2f}")
    lines += ["", "  ".join(measures)]
    if isinstance(row.get("facts"), list | tuple):
        lines.append(f"facts every reference states: {list(row['facts'])}; the output misses "
                     f"{fact_rules.missed_facts(row['prediction'], row['facts'])}")
    lines.append(f"specifics of the output not in the dialogue: "
                 f"{fact_rules.ungrounded_items(row['prediction'], row['dialogue'])}")
    return "\n".join(lines)


def probe_template(probe: str) -> templates.Template:
    """The template a probe task is scored with: its first original-task training template."""
    return next(t for t in templates.training_templates(probe) if t.original_task)


def probe_test(probe: str, profile: Profile | None = None):
    """A probe task's test split, cut to the profile's ``n_probe_eval``."""
    profile = profile or get_profile()
    test = data.load_probe(probe, profile)["test"]
    if profile.n_probe_eval:
        test = test.select(range(min(profile.n_probe_eval, len(test))))
    return test


def probe_predictions(model, tokenizer, probe: str, test, profile: Profile) -> tuple[list[str], int]:
    """The model's answers to a probe's ``test`` rows with the course's probe prompt (fitted to the model's
    input limit) and generation config, and how many prompts had to be shortened."""
    prompts, shortened = fit_prompts(probe_template(probe), test, tasks.get(probe).long_field, tokenizer,
                                     profile.max_source_length)
    predictions = evaluation.generate(model, tokenizer, prompts, evaluation.generation_config(profile),
                                      batch_size=profile.eval_batch_size,
                                      max_source_length=profile.max_source_length, desc=f"Probe {probe}")
    return predictions, len(shortened)


def evaluate_probe(model, tokenizer, probe: str, profile: Profile | None = None) -> dict:
    """Score one held-in skill: its main score (``main``) and the task's other measures."""
    profile = profile or get_profile()
    test = probe_test(probe, profile)
    predictions, n_shortened = probe_predictions(model, tokenizer, probe, test, profile)
    scores = evaluation.score_probe(probe, predictions, list(test))
    scores["main"], scores["n_shortened"] = scores["score"], n_shortened
    return scores


def evaluate_probes(model, tokenizer, profile: Profile | None = None, probes=PROBES) -> dict[str, dict]:
    """:func:`evaluate_probe` for every probe task."""
    return {probe: evaluate_probe(model, tokenizer, probe, profile) for probe in probes}


def summarization_training_data(profile: Profile | None = None, split: str = "train"):
    """The target task as prompt/target pairs: each dialogue rendered with one of the training
    summarization templates (the held-out template and inverted templates excluded)."""
    profile = profile or get_profile()
    rows = data.load_target(profile)[split]
    chosen = templates.training_templates(TARGET_TASK, include_inverted=False)
    return templates.apply_template(rows, chosen, seed=profile.seed)


def validation_pairs(profile: Profile | None = None):
    """A few validation dialogues with the evaluation prompt, for the validation loss/ROUGE curve."""
    profile = profile or get_profile()
    rows = data.load_target(profile)["validation"]
    rows = rows.select(range(min(profile.n_validation, len(rows))))
    return templates.apply_template(rows, templates.get_template(TARGET_TASK, EVAL_TEMPLATE), seed=profile.seed)


def single_task_run(method: str, profile: Profile | None = None, force: bool = False) -> training.TrainedRun:
    """Fine-tune on dialogue summarization alone (``full`` or ``lora``), or load the cached run."""
    profile = profile or get_profile()
    return training.train(f"single_task_{method}", method, summarization_training_data(profile),
                          validation_pairs(profile), profile, force=force)


# --- lesson 03: single-task fine-tuning, compared on equal terms ----------------------------------------
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
#: The scores saved per model: ROUGE-1/2/L/Lsum with their 95% intervals, the mean summary length and
#: grounding (with its interval and the share of summaries it could check); fact recall is saved beside them
#: where the data records facts (:func:`saved_scores`).
SCORE_KEYS = ([f"{r}{s}" for r in evaluation.ROUGE_TYPES for s in ("", "_ci_low", "_ci_high")] + ["gen_len_words"]
              + list(evaluation.GROUNDING_KEYS))
FACT_NAMES = {"fact_recall": "fact recall", "grounding": "grounding"}


def saved_scores(scores: dict) -> dict:
    """The :data:`SCORE_KEYS` of ``scores``, plus fact recall with its interval where it was measured."""
    return {key: scores[key] for key in [*SCORE_KEYS, *evaluation.FACT_RECALL_KEYS] if key in scores}


def template_fingerprint(template: templates.Template) -> str:
    """A short hash of a template's text (its Jinja and answer choices): a cache key that an edit of the
    template's wording changes, where its name would not."""
    import hashlib

    text = f"{template.jinja}\x00{template.answer_choices or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def zero_shot_setup(profile: Profile | None = None) -> dict:
    """What makes zero-shot scores comparable with the fine-tuned models' (saved beside them by lesson 01):
    the prompt's name and text, ``max_new_tokens`` and the base model's fingerprint (weights and tokenizer)."""
    profile = profile or get_profile()
    return {"template": EVAL_TEMPLATE,
            "template_fingerprint": template_fingerprint(templates.get_template(TARGET_TASK, EVAL_TEMPLATE)),
            "max_new_tokens": profile.max_new_tokens,
            "model_fingerprint": training.model_fingerprint(profile.model)}


def saved_zero_shot(profile: Profile | None = None) -> dict | None:
    """Lesson 01's zero-shot scores from ``metrics.json`` if they were measured as the fine-tuned models are
    (:func:`zero_shot_setup`: the same base model, prompt text and ``max_new_tokens``) on the same test
    dialogues; otherwise None (then measure them again)."""
    from utils import results

    profile = profile or get_profile()
    saved = results.load_metrics(profile).get("zero_shot", {})
    test = target_test(profile)
    comparable = (all(saved.get(key) == value for key, value in zero_shot_setup(profile).items())
                  and saved.get("n_dialogues") == len(test))
    keys = [*SCORE_KEYS, *(evaluation.FACT_RECALL_KEYS if "facts" in test.column_names else ())]
    return saved if comparable and all(key in saved for key in keys) else None


def fine_tuning_table(scores: dict[str, dict], runs: dict[str, training.TrainedRun]) -> pd.DataFrame:
    """One row per model: ROUGE-1/2/L/Lsum, fact recall (where measured) and grounding in percent with their
    95% CI, trainable parameters, training time, checkpoint size and mean summary length. A model without a run (the zero-shot base) trained nothing."""
    rows = {}
    for name, s in scores.items():
        row = {label: f"{100 * s[r]:.1f} [{100 * s[f'{r}_ci_low']:.1f}, {100 * s[f'{r}_ci_high']:.1f}]"
               for r, label in {**ROUGE_NAMES, **FACT_NAMES}.items() if r in s}
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
    needs ``dialogue`` and ``references`` (as :func:`evaluate_summarization` returns them)."""
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
