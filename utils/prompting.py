"""Zero-, one- and few-shot prompts for dialogue summarization (lesson 01), and scoring prompts side by side:
shots come from the train split only (:func:`check_shots`), every prompt is measured and never silently cut
(:func:`length_report`), and :func:`score_prompts` compares like with like (same dialogues, same decoding)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from utils import evaluation, templates
from utils.config import Profile
from utils.data import TARGET_TASK
from utils.scoring import EVAL_TEMPLATE

#: Prompt styles, from least to most help: the dialogue alone, the evaluation template, then solved examples.
STYLES = ("no_instruction", "zero_shot", "one_shot", "few_shot")


class ShotLeakError(ValueError):
    """A few-shot exemplar comes from the test split."""


def pick_shots(train, k: int, seed: int = 42, test=None, tokenizer=None, max_tokens: int | None = None
               ) -> list[dict]:
    """``k`` solved examples drawn reproducibly from ``train`` (checked against ``test`` if given), among rows
    whose :func:`shot_text` has at most ``max_tokens`` tokens if given (counted by ``tokenizer``)."""
    candidates = np.arange(len(train))
    if max_tokens is not None:
        if tokenizer is None:
            raise ValueError("max_tokens needs a tokenizer to count tokens: pick_shots(..., tokenizer=...)")
        template = eval_template()
        lengths = np.asarray(evaluation.prompt_lengths(tokenizer, [shot_text(r, template) for r in train]))
        candidates = candidates[lengths <= max_tokens]
    if not 0 <= k <= len(candidates):
        within = f" with at most {max_tokens} tokens (or raise max_tokens)" if max_tokens is not None else ""
        raise ValueError(f"k={k}: use 0 <= k <= {len(candidates)}, the number of train rows{within}.")
    chosen = np.random.default_rng(seed).choice(candidates, size=k, replace=False)
    shots = [dict(train[int(i)]) for i in sorted(chosen)]
    if test is not None:
        check_shots(shots, test)
    return shots


def eval_template() -> templates.Template:
    """The course's evaluation template for the target task (the reference lab's prompt)."""
    return templates.get_template(TARGET_TASK, EVAL_TEMPLATE)


def shot_text(shot: Mapping, template: templates.Template | None = None) -> str:
    """One solved example as a few-shot prompt shows it: the rendered input, a new line, the summary."""
    return "\n".join((template or eval_template()).render(shot))


def check_shots(shots: Sequence[Mapping], test) -> None:
    """Raise :class:`ShotLeakError` if a shot's ``id`` or ``dialogue`` (grouping renames ids) is in test."""
    in_test = {(key, row[key]) for row in _rows(test) for key in ("id", "dialogue") if key in row}
    leaked = [str(shot.get("id", f"shot #{i}")) for i, shot in enumerate(shots)
              if {("id", shot.get("id")), ("dialogue", shot.get("dialogue"))} & in_test]
    if leaked:
        raise ShotLeakError(f"{len(leaked)} of {len(shots)} few-shot exemplars come from the test split: "
                            f"{', '.join(leaked)}. A test answer in the prompt inflates the score; take them "
                            "from the train split: pick_shots(dataset['train'], k, test=dataset['test']).")


def build_prompt(example: Mapping, style: str, shots: Sequence[Mapping] = (),
                 template: templates.Template | None = None) -> str:
    """The prompt for one dialogue in one of the :data:`STYLES`: ``one_shot`` uses the first of ``shots``,
    ``few_shot`` all of them (at least two), rendered with their summaries before the query."""
    if style not in STYLES:
        raise ValueError(f"Unknown prompt style {style!r}; use one of {', '.join(STYLES)}.")
    if style == "no_instruction":
        return example["dialogue"]
    template = template or eval_template()
    if style == "zero_shot":
        return template.render_source(example)
    needed = 1 if style == "one_shot" else 2
    if len(shots) < needed:
        raise ValueError(f"The {style} style needs at least {needed} shot(s), got {len(shots)}; pass "
                         "shots=pick_shots(train, k).")
    chosen = shots[:1] if style == "one_shot" else shots
    return templates.render_few_shot(template, chosen, example, with_target=False)[0]


def build_prompts(examples: Iterable[Mapping], shots: Sequence[Mapping] = (), styles: Sequence[str] = STYLES
                  ) -> pd.DataFrame:
    """Every example in every style: a table with the columns ``id``, ``style`` and ``prompt``."""
    template = eval_template()
    rows = [(example.get("id", str(i)), style, build_prompt(example, style, shots, template))
            for i, example in enumerate(examples) for style in styles]
    return pd.DataFrame(rows, columns=["id", "style", "prompt"])


def length_report(tokenizer, prompts: Sequence[str], limit: int, names: Sequence[str] | None = None
                  ) -> pd.DataFrame:
    """Each prompt's length in tokens against ``limit`` (columns ``tokens``, ``fits``, ``over_by``); nothing
    is cut. ``names`` (e.g. ``"test_3/few_shot"``) label the rows; by default they are numbered."""
    if limit < 1:
        raise ValueError(f"limit={limit} must be a positive number of tokens, e.g. profile.max_source_length")
    prompts = list(prompts)
    if names is not None and len(names) != len(prompts):
        raise ValueError(f"{len(names)} names for {len(prompts)} prompts; give one name per prompt")
    table = pd.DataFrame({"tokens": evaluation.prompt_lengths(tokenizer, prompts)},
                         index=None if names is None else list(names), dtype=int)
    table = table.assign(fits=table["tokens"] <= limit, over_by=(table["tokens"] - limit).clip(lower=0))
    table.attrs["limit"] = limit
    return table


def describe_lengths(report: pd.DataFrame, what: str = "prompts") -> str:
    """One sentence on a :func:`length_report`: do all fit, and if not, which would be truncated."""
    limit, too_long, longest = report.attrs.get("limit"), report[~report["fits"]], report["tokens"].max()
    if report.empty:
        return f"No {what} to check."
    if too_long.empty:
        return f"All {len(report)} {what} fit in the {limit}-token limit (longest: {longest} tokens)."
    shown = ", ".join(f"{f'#{i}' if isinstance(i, int | np.integer) else i} ({n} tokens)"
                      for i, n in too_long["tokens"].head(5).items())
    more = f" and {len(too_long) - 5} more" if len(too_long) > 5 else ""
    return (f"{len(too_long)} of {len(report)} {what} exceed the {limit}-token limit and would be truncated: "
            f"{shown}{more}. They are not cut here: use fewer or shorter shots, or leave them out.")


def length_table(rows, tokenizer) -> pd.DataFrame:
    """Each row's dialogue and summary in words and tokens, and its evaluation prompt in tokens (token counts
    include the end-of-sequence token, as the model sees them)."""
    template, rows = eval_template(), _rows(rows)
    texts = {"dialogue": [r["dialogue"] for r in rows], "prompt": [template.render_source(r) for r in rows],
             "summary": [r["summary"] for r in rows]}
    words = {f"{part}_words": [len(text.split()) for text in texts[part]] for part in ("dialogue", "summary")}
    return pd.DataFrame({**words, **{f"{part}_tokens": evaluation.prompt_lengths(tokenizer, part_texts)
                                     for part, part_texts in texts.items()}})


def compare_styles(model, tokenizer, test, shots: Sequence[Mapping], profile: Profile
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each prompt style on the same test dialogues (:func:`score_prompts`)."""
    rows = _rows(test)
    check_shots(shots, rows)
    return score_prompts(model, tokenizer, build_prompts(rows, shots), rows, profile, by="style")


def summary_templates() -> list[templates.Template]:
    """The target task's summarization templates (held-out one included, inverted ones not), in file order."""
    return [t for t in templates.load_templates(TARGET_TASK) if t.original_task]


def compare_templates(model, tokenizer, test, profile: Profile, names: Sequence[str] | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score summarization templates (default: :func:`summary_templates`) zero-shot on the same dialogues."""
    rows = _rows(test)
    names = list(names) if names is not None else [t.name for t in summary_templates()]
    chosen = {name: templates.get_template(TARGET_TASK, name) for name in names}
    prompts = pd.DataFrame([{"id": row["id"], "template": name, "prompt": chosen[name].render_source(row)}
                            for row in rows for name in names], columns=["id", "template", "prompt"])
    return score_prompts(model, tokenizer, prompts, rows, profile, by="template")


def score_prompts(model, tokenizer, prompts: pd.DataFrame, test, profile: Profile,
                  by: str = "style") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate and score each way of prompting (column ``by`` of ``prompts``: ``id``, ``by``, ``prompt``) on
    ``test`` grouped by dialogue; a dialogue too long in any way is left out of every way (``n_left_out``).
    Returns one row per way (ROUGE with bootstrap CIs, grounding, fact recall, ``prompt_tokens``) and one per
    dialogue and way (``prompt``, ``tokens``, ``prediction``, ``references``, ``rouge1``)."""
    rows = {row["id"]: row for row in _rows(test)}
    prompts = prompts.reset_index(drop=True)
    prompts["tokens"] = length_report(tokenizer, prompts["prompt"], profile.max_source_length)["tokens"]
    fits = prompts.groupby("id", sort=False)["tokens"].max() <= profile.max_source_length
    if not fits.any():
        raise ValueError(f"No dialogue fits the {profile.max_source_length}-token limit in every prompt; "
                         "use fewer or shorter shots.")
    scores, outputs = [], []
    for name, mine in prompts[prompts["id"].map(fits)].groupby(by, sort=False):
        mine_rows = [rows[i] for i in mine["id"]]
        refs = [row["references"] for row in mine_rows]
        predictions = evaluation.generate(model, tokenizer, list(mine["prompt"]), profile, desc=str(name))
        facts = [row["facts"] for row in mine_rows] if all("facts" in row for row in mine_rows) else None
        scores.append({by: name, **evaluation.score_summaries(predictions, refs, seed=profile.seed),
                       **evaluation.score_facts(predictions, [row["dialogue"] for row in mine_rows], facts,
                                                seed=profile.seed),
                       "prompt_tokens": float(mine["tokens"].mean()), "n_left_out": int((~fits).sum())})
        rouge1 = evaluation.rouge_per_example(predictions, refs)["rouge1"]
        outputs.append(mine.assign(prediction=predictions, references=refs, rouge1=rouge1))
    return pd.DataFrame(scores), pd.concat(outputs, ignore_index=True)


def templates_section(validation_scores: pd.DataFrame, test_scores: pd.DataFrame, paired: Mapping, *,
                      best: str, worst: str, held_out: str, n_validation_dialogues: int,
                      n_test_dialogues: int, n_training_templates: int) -> dict:
    """Lesson 02's ``templates`` section of metrics.json: scores on validation, best and worst on test."""
    keys = ("rouge1", "rouge1_ci_low", "rouge1_ci_high", "fact_recall", "grounding")
    validation, on_test = (s.set_index("template")["rouge1"] for s in (validation_scores, test_scores))
    return {
        "n_dialogues": n_test_dialogues,  # test dialogues of the best-vs-worst comparison
        "n_validation_dialogues": n_validation_dialogues,
        "selected_on": "validation",  # per_template and held_out_rouge1 are validation scores
        "per_template": {row["template"]: {key: row[key] for key in keys if key in row}
                         for row in validation_scores.to_dict("records")},
        "held_out": held_out, "held_out_rouge1": validation[held_out],
        "best": best, "best_rouge1": on_test[best], "best_validation_rouge1": validation[best],
        "worst": worst, "worst_rouge1": on_test[worst],
        "best_minus_worst": paired["mean_diff"],  # on test, paired
        "best_beats_worst_share": paired["p_a_better"],  # share of bootstrap resamples in which best wins
        "n_summary_templates": len(validation_scores), "n_training_templates": n_training_templates,
    }


def _rows(dataset) -> list[dict]:
    return dataset.to_list() if hasattr(dataset, "to_list") else [dict(row) for row in dataset]
