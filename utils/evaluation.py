"""Evaluation: how the course generates, scores and compares models (generic measures, no course data).

Four parts, each used by several notebooks:

* **Generation** -- :func:`generation_config` is the one place decoding is fixed (greedy, a fixed
  ``max_new_tokens``), and :func:`generate` runs it in length-sorted batches. Prompts that do not fit the
  model are an error, never silently cut.
* **ROUGE** -- the project's own metric module (``utils/metrics/rouge``) loaded offline with
  ``evaluate.load``; multi-reference, stemmed, ROUGE-Lsum on real sentences; bootstrap confidence intervals
  and a paired bootstrap for "is model A better than model B?".
* **Probe metrics** -- SQuAD-style exact match and token F1, accuracy and the share of valid labels.
* **Forgetting measures** -- drop (absolute and relative) and "max earlier minus final".

Every score is a fraction in [0, 1] (multiply by 100 only when comparing with papers).
"""

from __future__ import annotations

import functools
import os
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import GenerationConfig

from utils import data
from utils.config import Profile
from utils.notebook import Bar

ROUGE_DIR = Path(__file__).resolve().parent / "metrics" / "rouge"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_SOURCE_LENGTH = 512  # T5's usual input budget

# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


class PromptTooLongError(ValueError):
    """Some prompts have more tokens than the model is allowed to read."""

    def __init__(self, too_long: list[tuple[int, int]], limit: int, n_prompts: int):
        self.too_long = too_long
        self.limit = limit
        index, length = max(too_long, key=lambda item: item[1])
        shown = ", ".join(f"#{i} ({n} tokens)" for i, n in too_long[:5])
        more = f" and {len(too_long) - 5} more" if len(too_long) > 5 else ""
        super().__init__(
            f"{len(too_long)} of {n_prompts} prompts are longer than max_source_length={limit} tokens: "
            f"{shown}{more}; the longest is #{index} with {length} tokens. The model would never see their "
            "end (often the instruction or 'Summary:'). Shorten them (fewer few-shot examples, shorter "
            "dialogues), raise max_source_length if the model supports it, or pass truncate=True to cut "
            "them on purpose."
        )


def decoding(profile: Profile) -> dict:
    """The course's decoding, stated once: greedy search and the profile's ``max_new_tokens``.

    Greedy (no sampling, one beam) is deterministic, so every model in a table is compared on the same
    footing and a rerun gives the same text.
    """
    return {"do_sample": False, "num_beams": 1, "max_new_tokens": profile.max_new_tokens}


def generation_config(profile: Profile) -> GenerationConfig:
    """:func:`decoding` as the ``GenerationConfig`` that ``generate`` takes."""
    return GenerationConfig(**decoding(profile))


def prompt_lengths(tokenizer, prompts: Sequence[str]) -> list[int]:
    """Length of each prompt in tokens, special tokens (such as T5's ``</s>``) included."""
    prompts = _as_texts(prompts, "prompts")
    if not prompts:
        return []
    return [len(ids) for ids in tokenizer(prompts, verbose=False)["input_ids"]]  # measured to be fitted: no warning


def check_prompt_lengths(tokenizer, prompts: Sequence[str], limit: int) -> list[tuple[int, int]]:
    """The prompts longer than ``limit`` tokens, as ``(index, length)`` pairs (empty when all fit)."""
    return _over_limit(prompt_lengths(tokenizer, prompts), limit)


#: What marks the place where a long prompt lost its middle.
ELLIPSIS = " ..."
#: Tokens a long prompt keeps from its end (at most a quarter of the limit): room for the instruction's end,
#: such as "Summary:", and the last words of the text before it.
_TAIL_TOKENS = 24


def fit_prompts(prompts: Sequence[str], tokenizer, limit: int, tail: int = _TAIL_TOKENS,
                warn: bool = True) -> tuple[list[str], list[int]]:
    """The course's one rule for a prompt longer than the model reads: keep its start and its last ``tail``
    tokens, and mark the cut middle with "...". Training (:func:`utils.training.tokenize`), scoring
    (:mod:`utils.scoring`) and the playground all fit prompts with it.

    ``limit`` counts tokens with the special ones (T5's ``</s>``), as :func:`prompt_lengths` does. Prompts that fit
    are returned untouched. Returns the prompts and the indices of those shortened (a warning says how many,
    unless ``warn=False``). A tokenizer's own truncation drops the prompt's *end* -- in "Summarize ...
    {dialogue} Summary:" the cue to answer -- and the reference lab lets it; a few DialogSum test dialogues
    are longer than FLAN-T5's 512 tokens.
    """
    prompts = _as_texts(prompts, "prompts")
    lengths = prompt_lengths(tokenizer, prompts)
    shortened = [i for i, n in enumerate(lengths) if n > limit]
    fitted = list(prompts)
    for i in shortened:
        fitted[i] = _cut_middle(prompts[i], tokenizer, limit, min(tail, limit // 4), lengths[i])
        if fitted[i] is None:
            raise PromptTooLongError([(i, lengths[i])], limit, len(prompts))
    if shortened and warn:
        warnings.warn(f"{len(shortened)} of {len(prompts)} prompts were longer than max_source_length={limit} "
                      "tokens; their middle was cut (marked '...') so that their start and their end (such as "
                      "'Summary:') stay whole.", stacklevel=2)
    return fitted, shortened


def _cut_middle(prompt: str, tokenizer, limit: int, tail: int, length: int) -> str | None:
    """``prompt`` with tokens before its last ``tail`` ones replaced by :data:`ELLIPSIS` until it has at most
    ``limit`` tokens; the kept parts are the prompt's own text (cut at token boundaries). None if no start fits."""
    encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans = encoded["offset_mapping"]
    end = prompt[spans[len(spans) - tail][0]:] if tail else ""
    keep = len(spans) - tail
    while length > limit:
        keep -= length - limit
        if keep < 1:
            return None
        cut = prompt[: spans[keep - 1][1]].rstrip() + ELLIPSIS + (" " + end.lstrip() if end else "")
        length = prompt_lengths(tokenizer, [cut])[0]
    return cut


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    gen_config: GenerationConfig | Profile,
    batch_size: int | None = None,
    max_source_length: int | None = None,
    *,
    truncate: bool = False,
    desc: str = "Generating",
    progress: bool = True,
) -> list[str]:
    """Generate one output per prompt with a sequence-to-sequence model; outputs keep the prompts' order.

    Fast and fair at once:
    * prompts are sorted by token length so each batch holds similar lengths and is padded only to its
      own longest prompt (dynamic padding), which wastes little compute; longest first, so a batch that
      does not fit in memory fails at once and the progress bar's time estimate errs on the safe side;
    * ``torch.inference_mode`` and ``model.eval()`` (restored afterwards): no gradients, no dropout;
    * decoding comes from ``gen_config`` -- pass :func:`generation_config` or a profile (then
      ``batch_size`` and ``max_source_length`` default to the profile's).

    A prompt longer than ``max_source_length`` tokens raises :class:`PromptTooLongError`; pass
    ``truncate=True`` to fit such prompts by the course's rule instead (:func:`fit_prompts`).
    """
    prompts = _as_texts(prompts, "prompts")
    if isinstance(gen_config, Profile):
        batch_size = batch_size or gen_config.eval_batch_size
        max_source_length = max_source_length or gen_config.max_source_length
        gen_config = generation_config(gen_config)
    batch_size = batch_size or _DEFAULT_BATCH_SIZE
    max_source_length = max_source_length or DEFAULT_MAX_SOURCE_LENGTH
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not prompts:
        return []

    if truncate:
        prompts = fit_prompts(prompts, tokenizer, max_source_length, warn=False)[0]
    lengths = prompt_lengths(tokenizer, prompts)
    too_long = _over_limit(lengths, max_source_length)
    if too_long:
        raise PromptTooLongError(too_long, max_source_length, len(prompts))

    order = sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)
    outputs: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with (
            torch.inference_mode(),
            Bar(total=len(prompts), desc=desc, unit="prompt", disable=not progress) as bar,
        ):
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                texts = _generate_batch(model, tokenizer, [prompts[i] for i in indices], gen_config)
                for i, text in zip(indices, texts, strict=True):
                    outputs[i] = text
                bar.update(len(indices))
    finally:
        model.train(was_training)
    return outputs


def _generate_batch(model, tokenizer, prompts: list[str], gen_config) -> list[str]:
    """One batch: pad to its longest prompt, move it to the model's device, generate, decode."""
    batch = tokenizer(prompts, padding=True, return_tensors="pt").to(model.device)
    generated = model.generate(**batch, generation_config=gen_config)
    return [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]


def _as_texts(texts, what: str) -> list[str]:
    """``texts`` as a list of strings, or a TypeError saying which item is not a string."""
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings; wrap a single one in a list: [text]")
    if texts is None or not isinstance(texts, Iterable):
        raise TypeError(f"{what} is {'None' if texts is None else type(texts).__name__}, not a list of strings; "
                        "give a list of texts, e.g. [text] (an empty list gives an empty result).")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{what}[{bad[0]}] is {type(texts[bad[0]]).__name__}, not str; give text")
    return texts


def _over_limit(lengths: Sequence[int], limit: int) -> list[tuple[int, int]]:
    return [(i, n) for i, n in enumerate(lengths) if n > limit]


# --------------------------------------------------------------------------------------------------
# ROUGE and confidence intervals
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_rouge():
    """The project's ROUGE metric (``utils/metrics/rouge``), loaded by path with no network.

    ``HF_EVALUATE_OFFLINE=1`` keeps ``evaluate`` from contacting the Hub; the module lives in the
    project, so nothing needs downloading. Loaded once and reused.
    """
    os.environ["HF_EVALUATE_OFFLINE"] = "1"
    import evaluate

    return evaluate.load(str(ROUGE_DIR), keep_in_memory=True)


def rouge_per_example(predictions: Sequence[str], references: Sequence,
                      use_stemmer: bool = True) -> dict[str, np.ndarray]:
    """ROUGE-1/2/L/Lsum F-measure of every prediction, as arrays aligned with ``predictions``.

    ``references[i]`` is one reference string or a list of them; with several, the best one counts.
    ``use_stemmer=False`` matches words as written (the reference lab's setting).
    """
    predictions, references = _check_pairs(predictions, references)
    scores = load_rouge().compute(predictions=predictions, references=references, use_aggregator=False,
                                  use_stemmer=use_stemmer)
    return {rouge_type: np.asarray(scores[rouge_type], dtype=float) for rouge_type in ROUGE_TYPES}


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean: resample the examples with replacement.

    Seeded, so the same inputs always give the same interval.
    """
    means = _bootstrap_means(_as_scores(values), n_resamples, seed)
    return _percentile_interval(means, confidence)


#: How summaries are scored: the course's way, or the reference lab's (see :func:`score_summaries`).
_PROTOCOLS = ("course", "lab")


def score_summaries(
    predictions: Sequence[str], references: Sequence, n_resamples: int = 1000, seed: int = 0,
    protocol: str = "course",
) -> dict:
    """Mean ROUGE with 95% bootstrap intervals, the number of examples and the mean output length.

    Returns a flat dict: ``rouge1``, ``rouge1_ci_low``, ``rouge1_ci_high`` (and the same for rouge2,
    rougeL, rougeLsum), ``n`` and ``gen_len_words`` (mean words per prediction).

    ``protocol="lab"`` scores as the reference lab did, so that its published numbers can be compared: every
    (prediction, reference) pair is one row, scored against that single reference, without stemming (``n``
    then counts rows). The course's protocol (``"course"``): one row per prediction, the best of its
    references, stemmed.
    """
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}; use one of {_PROTOCOLS}.")
    if protocol == "lab":
        predictions, references = _check_pairs(predictions, references)
        predictions = [p for p, refs in zip(predictions, references, strict=True) for _ in _references(refs)]
        references = [r for refs in references for r in _references(refs)]
    per_example = rouge_per_example(predictions, references, use_stemmer=protocol == "course")
    return rouge_summary(per_example, predictions, n_resamples, seed)


def rouge_summary(per_example: Mapping[str, np.ndarray], predictions: Sequence[str], n_resamples: int = 1000,
                  seed: int = 0) -> dict:
    """:func:`score_summaries` from ROUGE already computed per example (:func:`rouge_per_example`)."""
    result: dict = {}
    for rouge_type, values in per_example.items():
        low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
        result.update(
            {rouge_type: float(values.mean()), f"{rouge_type}_ci_low": low, f"{rouge_type}_ci_high": high}
        )
    result["n"] = len(predictions)
    result["gen_len_words"] = float(np.mean([len(p.split()) for p in predictions]))
    return result


def paired_bootstrap(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Is A better than B on the same examples? Resample examples, keeping each A/B pair together.

    Returns ``mean_diff`` (A minus B), its confidence interval ``ci_low``/``ci_high`` and ``p_a_better``,
    the share of resamples in which A's mean beats B's. Pairing removes the example-to-example
    variation both models share, so it detects smaller differences than two separate intervals.
    """
    a, b = _as_scores(scores_a), _as_scores(scores_b)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must cover the same examples: got {len(a)} and {len(b)} scores")
    diff = a - b
    means = _bootstrap_means(diff, n_resamples, seed)
    low, high = _percentile_interval(means, confidence)
    return {
        "mean_diff": float(diff.mean()),
        "ci_low": low,
        "ci_high": high,
        "p_a_better": float((means > 0).mean()),
    }


def _check_pairs(predictions, references) -> tuple[list[str], list[list[str]]]:
    predictions = _as_texts(predictions, "predictions")
    references = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; give one reference "
            "(or one list of references) per prediction"
        )
    if not predictions:
        raise ValueError("nothing to score: predictions is empty")
    return predictions, references


def _as_scores(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty list of per-example scores, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN; score every example before bootstrapping")
    return values


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(values), size=(n_resamples, len(values)))
    return values[indices].mean(axis=1)


def _percentile_interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------------
# Probe metrics
# --------------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles (a, an, the), squeeze spaces."""
    if not isinstance(text, str):
        raise TypeError(f"Expected an answer or label as text, got {type(text).__name__} {text!r}. A label column "
                        "that holds numbers (e.g. a Hub ClassLabel) must be mapped to its names first.")
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized reference, else 0.0."""
    return max(
        float(normalize_answer(prediction) == normalize_answer(ref)) for ref in _references(references)
    )


def squad_f1(prediction: str, references: str | Sequence[str]) -> float:
    """SQuAD token F1 (word overlap of normalized texts), the best over the references."""
    return max(_token_f1(prediction, ref) for ref in _references(references))


def accuracy(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """Share of predictions equal to their label (compared after :func:`normalize_answer`)."""
    _same_length(predictions, labels, "labels")
    return float(
        np.mean(
            [normalize_answer(p) == normalize_answer(y) for p, y in zip(predictions, labels, strict=True)]
        )
    )


def valid_label_share(predictions: Sequence[str], options: Sequence) -> float:
    """Share of predictions that are one of the allowed labels at all (right or wrong).

    ``options`` is one list of labels shared by all examples, or one list per example. A low share
    means the model stopped answering the task (e.g. it now summarizes everything), not that it chose
    the wrong label.
    """
    predictions = list(predictions)
    if options and not isinstance(options[0], str):
        _same_length(predictions, options, "option lists")
        per_example = options
    else:
        per_example = [options] * len(predictions)
    allowed = [{normalize_answer(o) for o in opts} for opts in per_example]
    return float(np.mean([normalize_answer(p) in ok for p, ok in zip(predictions, allowed, strict=True)]))


def score_probe(task: str | data.Task, predictions: Sequence[str], examples) -> dict:
    """Score a probe task's predictions; ``task`` is a registered probe (:mod:`utils.data`), ``examples`` its
    rows (a Dataset or a list of dicts), scored against the task's ``answer`` column by its task type.

    Returns ``main_metric``, ``score`` (the main metric's value), every metric by name, and ``n``:
    * ``qa``: f1 (main) and exact_match;
    * ``classification``: accuracy (main) and valid_label_share (against the rows' ``options``);
    * ``generation``: rouge1 (main), rouge2 and rougeL.
    """
    try:
        task = data.get_probe(task)
    except data.TaskError as error:
        raise ValueError(str(error)) from None
    task_type = task.task_type
    predictions = _as_texts(predictions, "predictions")
    references = _column(examples, (task.answer,))
    _same_length(predictions, references, "examples")
    if task_type == "qa":
        metrics = {
            "f1": float(np.mean([squad_f1(p, r) for p, r in zip(predictions, references, strict=True)])),
            "exact_match": float(
                np.mean([exact_match(p, r) for p, r in zip(predictions, references, strict=True)])
            ),
        }
    elif task_type == "classification":
        options = _column(examples, ("options",), required=False) or sorted(set(references))
        metrics = {
            "accuracy": accuracy(predictions, references),
            "valid_label_share": valid_label_share(predictions, options),
        }
    else:
        rouge = rouge_per_example(predictions, references)
        metrics = {name: float(rouge[name].mean()) for name in ("rouge1", "rouge2", "rougeL")}
    main = task.main_metric
    return {"main_metric": main, "score": metrics[main], **metrics, "n": len(predictions)}


def _references(references) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("no reference answer given; pass at least one")
    return refs


def _token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _same_length(predictions, other, what: str) -> None:
    if len(predictions) != len(other):
        raise ValueError(
            f"{len(predictions)} predictions but {len(other)} {what}; they must match one to one"
        )


def _column(examples, candidates: Sequence[str], required: bool = True) -> list | None:
    """The first of ``candidates`` found in ``examples`` (a datasets.Dataset or a list of dicts)."""
    if hasattr(examples, "column_names"):
        names = examples.column_names
    else:
        examples = list(examples)
        names = list(examples[0]) if examples else []
    for name in candidates:
        if name in names:
            return (
                list(examples[name]) if hasattr(examples, "column_names") else [row[name] for row in examples]
            )
    if required:
        raise ValueError(f"examples need one of the columns {list(candidates)}; they have {list(names)}")
    return None


# --------------------------------------------------------------------------------------------------
# Forgetting measures
# --------------------------------------------------------------------------------------------------


def forgetting_drop(before: float, after: float) -> dict[str, float]:
    """How much of a skill was lost: ``absolute`` = before - after, ``relative`` = that / before.

    Positive means forgotten, negative means improved. ``relative`` is NaN when ``before`` is 0.
    """
    absolute = float(before) - float(after)
    relative = absolute / float(before) if before else float("nan")
    return {"absolute": absolute, "relative": relative}


def max_minus_final(history: Sequence[float]) -> float:
    """Forgetting along training: the best score at any earlier checkpoint minus the final score.

    ``history`` lists one task's scores at successive checkpoints. Positive means the final model
    lost ground it once had (Chaudhry et al. 2018's forgetting measure).
    """
    scores = np.asarray(history, dtype=float)
    if scores.ndim != 1 or scores.size < 2:
        raise ValueError("history needs the scores of at least two checkpoints, in training order")
    return float(scores[:-1].max() - scores[-1])


def forgetting_table(
    scores: Mapping[str, Mapping[str, float]], base: str = "base", average: bool = True
) -> pd.DataFrame:
    """Side-by-side probe scores and drops from the base model, one row per probe.

    ``scores[model][probe]`` is a model's main score on a probe. Columns: the base model, then for every
    other model its score, ``<model> drop`` (absolute) and ``<model> rel drop`` (relative to base).
    With ``average=True`` an ``average`` row gives the drop of the mean probe score.
    """
    if base not in scores:
        raise ValueError(f"no scores for the base model {base!r}; models given: {list(scores)}")
    probes = list(scores[base])
    rows = {probe: {m: s.get(probe, np.nan) for m, s in scores.items()} for probe in probes}
    if average:
        rows["average"] = {m: float(np.mean([rows[p][m] for p in probes])) for m in scores}
    table = pd.DataFrame.from_dict(rows, orient="index")
    missing = table.columns[table.isna().any()].tolist()
    if missing:
        raise ValueError(f"models {missing} lack scores for some probes of {base!r}: {probes}")
    columns = {base: table[base]}
    for model in (m for m in scores if m != base):
        drops = [forgetting_drop(b, a) for b, a in zip(table[base], table[model], strict=True)]
        columns[model] = table[model]
        columns[f"{model} drop"] = pd.Series([d["absolute"] for d in drops], index=table.index)
        columns[f"{model} rel drop"] = pd.Series([d["relative"] for d in drops], index=table.index)
    result = pd.DataFrame(columns)
    result.index.name = "probe"
    return result


# --------------------------------------------------------------------------------------------------
# Facts beside ROUGE: fact recall and grounding (the per-summary rules live in utils.evaluation)
# --------------------------------------------------------------------------------------------------

#: The fact measures stored beside ROUGE: grounding always, fact recall where the data records facts.
GROUNDING_KEYS = ("grounding", "grounding_ci_low", "grounding_ci_high", "grounding_checked")
FACT_RECALL_KEYS = ("fact_recall", "fact_recall_ci_low", "fact_recall_ci_high")


def facts_per_example(predictions: Sequence[str], dialogues: Sequence[str],
                      facts: Sequence[Sequence[str]] | None = None) -> dict[str, np.ndarray]:
    """Per summary: ``grounding`` (:func:`utils.evaluation.grounding`), ``grounding_checked`` (1.0 when the summary
    has a specific to check, else 0.0) and, when ``facts`` (one list per dialogue) is given, ``fact_recall``
    (:func:`utils.evaluation.fact_recall`; NaN for a dialogue with no recorded facts)."""
    predictions = _as_texts(predictions, "predictions")
    dialogues = _as_texts(dialogues, "dialogues")
    _same_length(predictions, dialogues, "dialogues")
    result = {
        "grounding": np.array([grounding(p, d) for p, d in zip(predictions, dialogues, strict=True)]),
        "grounding_checked": np.array([float(has_checkable_items(p)) for p in predictions]),
    }
    if facts is not None:
        facts = [list(f or []) for f in facts]
        _same_length(predictions, facts, "fact lists")
        result["fact_recall"] = np.array([fact_recall(p, f) for p, f in zip(predictions, facts,
                                                                                         strict=True)])
    return result


def score_facts(predictions: Sequence[str], dialogues: Sequence[str],
                facts: Sequence[Sequence[str]] | None = None, n_resamples: int = 1000, seed: int = 0) -> dict:
    """The fact measures beside ROUGE, each a mean with a 95% bootstrap interval (as :func:`score_summaries`).

    * ``grounding``: mean over all summaries of the share of their numbers, times, amounts, names and
      speaker tags found in the dialogue (a summary without any counts as 1.0); ``grounding_checked``: the
      share of summaries that had at least one such specific.
    * ``fact_recall`` (only when some dialogue has recorded ``facts``): mean over those dialogues of the
      share of their facts the summary contains; dialogues without facts are left out of it.
    """
    per_example = facts_per_example(predictions, dialogues, facts)
    grounding = per_example["grounding"]
    low, high = bootstrap_ci(grounding, n_resamples=n_resamples, seed=seed)
    result = {"grounding": float(grounding.mean()), "grounding_ci_low": low, "grounding_ci_high": high,
              "grounding_checked": float(per_example["grounding_checked"].mean())}
    recall = per_example.get("fact_recall")
    if recall is not None and not np.isnan(recall).all():
        recall = recall[~np.isnan(recall)]
        low, high = bootstrap_ci(recall, n_resamples=n_resamples, seed=seed)
        result.update({"fact_recall": float(recall.mean()), "fact_recall_ci_low": low, "fact_recall_ci_high": high})
    return result


def lead_summaries(dialogues: Sequence[str], k: int) -> list[str]:
    """A trivial baseline: the first ``k`` utterances of each dialogue, verbatim (one per line)."""
    if k < 1:
        raise ValueError(f"k must be at least 1 utterance, got {k}")
    return ["\n".join(d.strip().split("\n")[:k]) for d in _as_texts(dialogues, "dialogues")]


def rouge_high_facts_wrong(table: pd.DataFrame, below: float = 0.5) -> pd.Series | None:
    """The output ROUGE rates best among those with wrong facts: the highest ROUGE-1 among the rows of
    ``table`` (with ``rouge1`` and per-example fact columns, as :func:`utils.scoring.score_outputs`
    makes it) whose ``fact_recall`` is below ``below``, or, on data without recorded facts, whose
    ``grounding`` is. The row gains ``measure`` (which of the two) and ``rouge1_rank`` (the share of
    ``table``'s outputs with a lower ROUGE-1). None when no row is below ``below``."""
    measure = "fact_recall" if "fact_recall" in table else "grounding"
    if measure not in table:
        return None
    wrong = table[table[measure] < below]
    if wrong.empty:
        return None
    row = wrong.loc[wrong["rouge1"].idxmax()].astype(object)  # a copy that can also hold the name of the measure
    row["measure"], row["rouge1_rank"] = measure, float((table["rouge1"] < row["rouge1"]).mean())
    return row


#: Separates the accepted variants of one fact: ``"grey | gray"`` is found when either form is.
_VARIANT_SEPARATOR = " | "
_ARTICLE_WORDS = {"a", "an", "the"}
_NUMBER_WORDS = set("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
                   "seventeen eighteen nineteen twenty thirty forty fifty".split())
#: Capitalized words that are not names: the pronoun I and titles (the name after a title is checked).
_NOT_NAMES = {"I", "Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "St"}

_POSSESSIVE = re.compile(r"'s\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_CENTS = re.compile(r"(\$\d+)\.00\b")
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_TOKEN = re.compile(r"#\w+#|\$?\d+(?:[:.-]\d+)*|\w+(?:'\w+)*")
_TAG = re.compile(r"#Person\d+#", re.IGNORECASE)
_NUMBER = re.compile(r"\$?\d+(?:[,.:-]\d+)*")
_CAPITALIZED = re.compile(r"\b[A-Z][\w]*(?:'\w+)?")
#: A sentence starts at the text's start or after . ! ? or a line break (not after Mr./Dr./... ).
_SENTENCE_END = re.compile(r"(?:^|[.!?]|\n)\s*[\"'(]*$")
_ABBREVIATION_END = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St)\.\s*$")


def _time(match: re.Match) -> str:
    hour, minutes, half = match[1], match[2], match[3].lower()
    return f"{hour}{'' if minutes in (None, '00') else ':' + minutes} {half}m"


def normalize(text: str) -> list[str]:
    """The tokens facts are matched on. Rules, in order:

    1. curly apostrophes become ``'`` and a possessive ``'s`` goes (``Luigi's`` -> ``Luigi``); thousands separators go (``$1,000`` -> ``$1000``), and so do zero
       cents (``$30.00`` -> ``$30``);
    2. times are written one way: ``7pm``, ``7 p.m.``, ``7:00 PM`` -> ``7 pm``; ``7:30pm`` -> ``7:30 pm``;
    3. lowercase (number words stay words: ``four`` is not ``4``, so a party of ``five`` is not found in
       ``5 pm``);
    4. tokens: speaker tags (``#person1#``), numbers with an optional ``$`` and inner ``: . -``
       (``$30``, ``7:30``, ``555-0123``), words with inner apostrophes (``luigi's``); other punctuation
       separates tokens and is dropped;
    5. the articles a, an, the are dropped.
    """
    text = _POSSESSIVE.sub("", text.replace("\u2019", "'").replace("\u2018", "'"))
    text = _CENTS.sub(r"\1", _THOUSANDS.sub("", text))
    text = _TIME.sub(_time, text).lower()
    return [token for token in _TOKEN.findall(text) if token not in _ARTICLE_WORDS]


def contains(text: str | Sequence[str], phrase: str | Sequence[str]) -> bool:
    """Does ``phrase`` occur in ``text`` as a run of whole normalized tokens? (Either may be pre-normalized.)"""
    haystack = normalize(text) if isinstance(text, str) else list(text)
    needle = normalize(phrase) if isinstance(phrase, str) else list(phrase)
    return bool(needle) and _spaced(needle) in _spaced(haystack)


def _spaced(tokens: Sequence[str]) -> str:
    """Tokens as one string with a space at each end, so that ``in`` matches whole tokens only."""
    return f" {' '.join(tokens)} "


def fact_variants(fact: str) -> list[str]:
    """The accepted forms of a recorded fact (``"grey | gray"`` -> ``["grey", "gray"]``)."""
    return [v.strip() for v in fact.split(_VARIANT_SEPARATOR.strip()) if v.strip()]


def fact_found(fact: str, summary: str | Sequence[str]) -> bool:
    """Is one of the fact's variants in the summary (normalized, whole tokens)?"""
    tokens = normalize(summary) if isinstance(summary, str) else summary
    return any(contains(tokens, variant) for variant in fact_variants(fact))


def fact_recall(summary: str, facts: Sequence[str]) -> float:
    """Share of ``facts`` found in ``summary`` (see :func:`fact_found`); NaN when there are no facts."""
    facts = list(facts)
    if not facts:
        return float("nan")
    tokens = normalize(summary)
    return sum(fact_found(fact, tokens) for fact in facts) / len(facts)


def checkable_items(summary: str) -> list[str]:
    """The specifics of a summary that :func:`grounding` looks for in the dialogue, each once, in order:

    * speaker tags such as ``#Person1#``, wherever they stand;
    * times (``7 pm``, ``7:30pm``, ``10 a.m.``) and numbers written with digits, amounts included
      (``$30``, ``$1,000``, ``204``, ``555-0123``); number words (``four``) are not items;
    * names: capitalized words that do not start a sentence (a sentence starts the text or follows
      ``.``, ``!``, ``?`` or a line break, but not ``Mr.``/``Dr.``/...), without a possessive ``'s``,
      except ``I`` and titles (:data:`_NOT_NAMES`). So days, cities and places count as names; a
      sentence-initial name ("Tom buys ...") is not checked, since capitals there say nothing.
    """
    items = [m[0] for m in _TAG.finditer(summary)]
    rest = _TAG.sub("tag", summary)  # lowercase stand-ins keep the sentence boundaries
    items += [m[0].rstrip(".") for m in _TIME.finditer(rest)]
    rest = _TIME.sub(lambda m: "time." if m[0].endswith(".") else "time", rest)
    items += [m[0] for m in _NUMBER.finditer(rest)]
    for match in _CAPITALIZED.finditer(rest):
        before = rest[: match.start()]
        word = re.sub(r"'s$", "", match[0])
        if word in _NOT_NAMES or (_SENTENCE_END.search(before) and not _ABBREVIATION_END.search(before)):
            continue
        items.append(word)
    unique: dict[str, str] = {}
    for item in items:
        unique.setdefault(" ".join(normalize(item)), item)
    return [item for key, item in unique.items() if key]


def grounding(summary: str, dialogue: str) -> float:
    """Share of the summary's :func:`checkable_items` that occur in the dialogue (normalized, whole tokens).

    ``"Tom buys a kettle for $40"`` against a dialogue with ``$30``: its one item, ``$40``, is not there: 0.0.
    A summary with no checkable item claims no specifics, so none of them is ungrounded: it counts as fully
    grounded (1.0); :func:`has_checkable_items` tells such summaries apart (the course reports their share).
    """
    items = checkable_items(summary)
    if not items:
        return 1.0
    tokens = normalize(dialogue)
    return sum(contains(tokens, item) for item in items) / len(items)


def has_checkable_items(summary: str) -> bool:
    """Does the summary name at least one specific that :func:`grounding` can check?"""
    return bool(checkable_items(summary))


def is_number(token: str) -> bool:
    """Is a normalized token a number (``5``, ``$30``, ``7:30``) or a number word (``five``)?"""
    return token in _NUMBER_WORDS or bool(re.fullmatch(r"\$?\d[\d:.-]*", token))


def missed_facts(summary: str, facts: Sequence[str]) -> list[str]:
    """The recorded facts that ``summary`` does not contain."""
    tokens = normalize(summary)
    return [fact for fact in facts if not fact_found(fact, tokens)]


def ungrounded_items(summary: str, dialogue: str) -> list[str]:
    """The summary's :func:`checkable_items` that do not occur in the dialogue."""
    tokens = normalize(dialogue)
    return [item for item in checkable_items(summary) if not contains(tokens, item)]


def stated_in(texts: Sequence[str]) -> Callable[[str], bool]:
    """A test for a fact: is one of its variants in one of ``texts`` (normalized, whole tokens, never across
    two texts)? Built once for many facts: ``new = [f for f in facts if not stated_in(train_summaries)(f)]``."""
    joined = "\n".join(_spaced(normalize(text)) for text in texts)

    def stated(fact: str) -> bool:
        return any(needle and _spaced(needle) in joined for needle in map(normalize, fact_variants(fact)))

    return stated
