"""Scoring the course's models like with like (same prompts, decoding and test rows) on the target test split,
the probes, zero-shot scores and the outside sets, cached (``cached_scores``); measures: utils.evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from utils import data, evaluation, modeling, results, templates
from utils.config import DATA_DIR, Profile, shown_path
from utils.data import TARGET_TASK

#: The prompt every model is scored with on the target task: the reference lab's, word for word.
EVAL_TEMPLATE = "summarize_following_conversation"
#: The scores saved per model: ROUGE with 95% intervals, summary length, grounding (fact recall: saved_scores)
SCORE_KEYS = ([f"{r}{s}" for r in evaluation.ROUGE_TYPES for s in ("", "_ci_low", "_ci_high")]
              + ["gen_len_words", *evaluation.GROUNDING_KEYS])
#: The fingerprint of the code that turns outputs into scores: saved scores are reused only by the same code.
SCORING_CODE = results.digest(path.read_bytes() for path in (
    Path(evaluation.__file__), Path(__file__), evaluation.ROUGE_DIR / "rouge.py"))


# --- cached scoring -----------------------------------------------------------------------------------
def adapter_is_off(model) -> bool:
    """True inside PEFT's ``with model.disable_adapter():`` (every adapter layer of a LoRA model off)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [module for module in model.modules() if isinstance(module, BaseTunerLayer)]
    return bool(layers) and all(layer.disable_adapters for layer in layers)


def weights_key(model) -> str:
    """A short hash of a model's weights, with ``-adapter-off`` inside ``model.disable_adapter()``."""
    return modeling.weights_fingerprint(model)[:16] + ("-adapter-off" if adapter_is_off(model) else "")


def tokenizer_key(tokenizer) -> str:
    """A short hash of a vocabulary: the same weights read through another vocabulary are another model."""
    return "none" if tokenizer is None else results.of_json(sorted(tokenizer.get_vocab().items()), length=12)


def cached_scores(name: str, model, settings: dict, compute: Callable[[], dict], profile: Profile) -> dict:
    """``compute()``, cached by ``name``, the model's weights and ``settings`` (all else that counts)."""
    settings_key = results.of_json(settings, length=12)
    path = profile.results_dir / "scores" / f"{name}-{weights_key(model)}-{settings_key}.json"
    if (cached := results.read_sealed(path)) is not None:
        return cached
    if path.exists():
        print(f"Note: {path.name} in {shown_path(path.parent)} was changed after it was scored (or an older "
              "version of the course wrote it): scoring again.")
    results.atomic_write_json(path, compute(), sealed=True)
    return results.read_sealed(path)  # the file's 6 digits: scores made now equal the same scores read later


def _summarize(model, tokenizer, dialogues: Sequence[str], profile: Profile, template_name: str,
               desc: str, warn: bool = True) -> tuple[list[str], list[int]]:
    template = templates.get_template(TARGET_TASK, template_name)
    prompts = [template.render_source(dict(dialogue=d, summary="", id="", topic="")) for d in dialogues]
    prompts, shortened = evaluation.fit_prompts(prompts, tokenizer, profile.max_source_length, warn=warn)
    return evaluation.generate(model, tokenizer, prompts, profile, desc=desc), shortened


def summarize(model, tokenizer, dialogues: list[str], profile: Profile, template_name: str = EVAL_TEMPLATE,
              desc: str = "Summarizing") -> list[str]:
    """Summaries of ``dialogues`` with one template, generated as every model's (long prompts are fitted)."""
    return _summarize(model, tokenizer, dialogues, profile, template_name, desc)[0]


def evaluate_summarization(model, tokenizer, profile: Profile, template_name: str = EVAL_TEMPLATE,
                           desc: str = "Summarizing") -> tuple[dict, pd.DataFrame]:
    """:func:`score_outputs` of ``model`` on the target test split, with ``n_shortened`` (dialogues cut). The
    summaries are cached by the model's weights, prompts and decoding: each model is summarized once."""
    test = data.target_test(profile)
    template = templates.get_template(TARGET_TASK, template_name)
    settings = {"tokenizer": tokenizer_key(tokenizer), "dialogues": results.of_json(list(test["dialogue"])),
                "template": templates.fingerprint(template), **evaluation.decoding(profile),
                "max_source_length": profile.max_source_length, "code": SCORING_CODE}

    def compute():
        predictions, shortened = _summarize(model, tokenizer, test["dialogue"], profile, template_name, desc)
        return {"predictions": predictions, "n_shortened": len(shortened)}

    summaries = cached_scores(f"summaries-{template_name}", model, settings, compute, profile)
    scores, table = score_outputs(summaries["predictions"], test, profile)
    return {**scores, "n_shortened": summaries["n_shortened"]}, table


def score_outputs(predictions: Sequence[str], test, profile: Profile) -> tuple[dict, pd.DataFrame]:
    """Summaries of the grouped ``test`` dialogues scored (ROUGE against all references, fact measures, 95%
    intervals), and per example: ``prediction``, ``references``, ROUGE, ``grounding``, ``fact_recall``."""
    facts = test["facts"] if "facts" in test.column_names else None
    rouge = evaluation.rouge_per_example(predictions, test["references"])
    scores = evaluation.rouge_summary(rouge, predictions, seed=profile.seed)
    scores.update(evaluation.score_facts(predictions, test["dialogue"], facts, seed=profile.seed))
    per_fact = evaluation.facts_per_example(predictions, test["dialogue"], facts)
    table = pd.DataFrame({"id": test["id"], "dialogue": test["dialogue"], "prediction": predictions,
                          "references": test["references"], **rouge, "grounding": per_fact["grounding"]})
    if facts is not None:
        table["facts"], table["fact_recall"] = list(facts), per_fact["fact_recall"]
    return scores, table


def fact_recall_by(table: pd.DataFrame, kind: Callable[[str], str]) -> pd.DataFrame:
    """Fact recall per ``kind(fact)`` (and per ``model`` when ``table`` concatenates several models' tables of
    :func:`score_outputs`): ``facts`` (count) and ``fact_recall`` (the share found). Empty without facts."""
    if "facts" not in table:
        return pd.DataFrame(columns=["facts", "fact_recall"])
    per_fact = table[table["facts"].map(lambda f: isinstance(f, list | tuple) and bool(f))].explode("facts")
    per_fact["kind"] = per_fact["facts"].map(kind)
    per_fact["found"] = list(map(evaluation.fact_found, per_fact["facts"], per_fact["prediction"]))
    keys = ["model", "kind"] if "model" in table else ["kind"]
    return per_fact.groupby(keys)["found"].agg(facts="size", fact_recall="mean")


def explain_output(row: Mapping) -> str:
    """A row of :func:`score_outputs`' table as text, with the facts it misses and specifics it invents."""
    lines = [row["dialogue"], "", f"{'output':>12}: {row['prediction']}"]
    lines += [f"{f'reference {i}':>12}: {ref}" for i, ref in enumerate(row["references"], 1)]
    recall = f"fact recall {row['fact_recall']:.2f}  " if pd.notna(row.get("fact_recall")) else ""
    lines += ["", f"ROUGE-1 {row['rouge1']:.3f}  {recall}grounding {row['grounding']:.2f}"]
    if isinstance(row.get("facts"), list | tuple):
        lines.append(f"facts every reference states: {list(row['facts'])}; the output misses "
                     f"{evaluation.missed_facts(row['prediction'], row['facts'])}")
    invented = evaluation.ungrounded_items(row["prediction"], row["dialogue"])
    return "\n".join([*lines, f"specifics of the output not in the dialogue: {invented}"])


def probe_template(probe: str) -> templates.Template:
    """The template a probe task is scored with: its first original-task training template."""
    return next(t for t in templates.training_templates(probe) if t.original_task)


def saved_scores(scores: dict) -> dict:
    """The :data:`SCORE_KEYS` of ``scores``, plus fact recall with its interval where it was measured."""
    return {key: scores[key] for key in [*SCORE_KEYS, *evaluation.FACT_RECALL_KEYS] if key in scores}


def zero_shot_setup(profile: Profile) -> dict:
    """What makes zero-shot scores comparable: the prompt's name and text, max_new_tokens, model and code."""
    return {"template": EVAL_TEMPLATE,
            "template_fingerprint": templates.fingerprint(templates.get_template(TARGET_TASK, EVAL_TEMPLATE)),
            "max_new_tokens": profile.max_new_tokens,
            "model_fingerprint": modeling.model_fingerprint(profile.model), "scoring_code": SCORING_CODE}


def zero_shot_section(scores: dict, profile: Profile, *, lead: dict, single_reference: dict,
                      lab_protocol: dict, styles: pd.DataFrame, n_shots: int) -> dict:
    """Lesson 01's ``zero_shot`` section of metrics.json: the scores, the ``lead`` baselines, the
    :func:`zero_shot_setup`, ROUGE per single reference and by the lab's protocol, and each prompt style's."""
    style_keys = ("rouge1", "rouge1_ci_low", "rouge1_ci_high", "prompt_tokens", "fact_recall", "grounding")
    single_keys = (*evaluation.ROUGE_TYPES, "rouge1_ci_low", "rouge1_ci_high")
    return {**{key: value for key, value in scores.items() if key != "n"}, "n_dialogues": scores["n"],
            **lead, **zero_shot_setup(profile),
            "single_reference": {**{key: single_reference[key] for key in single_keys},
                                 "n_rows": single_reference["n"]},
            "lab_protocol": {"rouge1": lab_protocol["rouge1"], "n_rows": lab_protocol["n"]},
            "prompt_styles": {"n_dialogues": int(styles["n"].iloc[0]), "n_shots": n_shots,
                              **{row["style"]: {key: row[key] for key in style_keys if key in row}
                                 for row in styles.to_dict("records")}}}


def saved_zero_shot(profile: Profile) -> dict | None:
    """Lesson 01's saved zero-shot scores if complete and comparable (same setup and test rows), else None."""
    saved = results.saved_section("zero_shot", profile) or {}
    test = data.target_test(profile)
    setup = {**zero_shot_setup(profile), "n_dialogues": len(test)}
    keys = [*SCORE_KEYS, *(evaluation.FACT_RECALL_KEYS if "facts" in test.column_names else ())]
    return saved if all(saved.get(k) == v for k, v in setup.items()) and set(keys) <= saved.keys() else None


# --- dialogues the generator did not write ---------------------------------------------------------------
#: Evaluation sets kept out of every training mixture (their READMEs say where they come from).
OUTSIDE_SETS = {"hand-written": DATA_DIR / "handwritten" / "test.jsonl",
                "real DialogSum": DATA_DIR / "dialogsum_real" / "test.jsonl"}


def outside_dialogues(name: str) -> list[dict]:
    """The rows of the evaluation set ``name`` (:data:`OUTSIDE_SETS`), checked as every data file is."""
    return data.read_jsonl(OUTSIDE_SETS[name], ("id", "dialogue", "summary", "topic"),
                           advice="Restore the file from the repository (git checkout -- data/).")


def invented_names(summary: str, dialogue: str) -> list[str]:
    """Capitalized names in ``summary`` that ``dialogue`` lacks (a lower bound: first words go unchecked)."""
    return [i for i in evaluation.ungrounded_items(summary, dialogue) if i[:1].isalpha() and i[:1].isupper()]


def score_outside(models: Mapping[str, object], tokenizer, profile: Profile,
                  sets: Sequence[str] = tuple(OUTSIDE_SETS)) -> tuple[pd.DataFrame, dict]:
    """Every model (and lead-2) on the :data:`OUTSIDE_SETS`: per set and model, fact recall with its 95%
    interval, invented names per summary and grounding; and the summaries, ``{set: {model: [...]}}``."""
    rows, outputs = [], {}
    for name in sets:
        examples = outside_dialogues(name)
        dialogues, facts = [row["dialogue"] for row in examples], [row["facts"] for row in examples]
        outputs[name], cut = {"lead-2": evaluation.lead_summaries(dialogues, 2)}, {}
        for label, model in models.items():
            outputs[name][label], shortened = _summarize(model, tokenizer, dialogues, profile, EVAL_TEMPLATE,
                                                         f"{label}, {name}", warn=False)
            cut[label] = len(shortened)
        for label, summaries in outputs[name].items():
            scores = evaluation.score_facts(summaries, dialogues, facts, seed=profile.seed)
            invented = [len(invented_names(s, d)) for s, d in zip(summaries, dialogues, strict=True)]
            rows.append({"set": name, "model": label, "dialogues": len(examples),
                         "fact recall": scores["fact_recall"], "95% CI low": scores["fact_recall_ci_low"],
                         "95% CI high": scores["fact_recall_ci_high"],
                         "invented names per summary": sum(invented) / len(invented),
                         "grounding": scores["grounding"], "prompts cut": cut.get(label, 0)})
    return pd.DataFrame(rows).set_index(["set", "model"]), outputs
