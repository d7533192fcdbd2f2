"""How the course generates, scores and compares models, with no course data: generation (greedy, prompts
fitted by one rule), ROUGE with bootstrap intervals, probe metrics, forgetting and fact measures in [0, 1]."""

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
ELLIPSIS = " ..."  # marks the place where a long prompt lost its middle
_TAIL_TOKENS = 24  # tokens a long prompt keeps from its end (at most a quarter of the limit), e.g. "Summary:"


# --- generation ------------------------------------------------------------------------------------
class PromptTooLongError(ValueError):
    """Some prompts have more tokens than the model is allowed to read."""

    def __init__(self, too_long: list[tuple[int, int]], limit: int, n_prompts: int):
        self.too_long = too_long
        shown = ", ".join(f"#{i} ({n} tokens)" for i, n in too_long[:5]) + (", ..." if too_long[5:] else "")
        super().__init__(
            f"{len(too_long)} of {n_prompts} prompts are longer than max_source_length={limit} tokens: "
            f"{shown}. The model would never see their end (often 'Summary:'): shorten them, raise "
            "max_source_length if the model supports it, or pass truncate=True to cut them on purpose.")


def decoding(profile: Profile) -> dict:
    """The course's decoding: greedy (deterministic, so models compare fairly) with the profile's budget."""
    return {"do_sample": False, "num_beams": 1, "max_new_tokens": profile.max_new_tokens}


def generation_config(profile: Profile) -> GenerationConfig:
    """:func:`decoding` as a ``GenerationConfig``."""
    return GenerationConfig(**decoding(profile))


def prompt_lengths(tokenizer, prompts: Sequence[str]) -> list[int]:
    """Length of each prompt in tokens, special tokens (such as T5's ``</s>``) included."""
    prompts = _as_texts(prompts, "prompts")  # verbose=False: no warning about prompts over the limit
    return [len(ids) for ids in tokenizer(prompts, verbose=False)["input_ids"]] if prompts else []


def fit_prompts(prompts: Sequence[str], tokenizer, limit: int, warn: bool = True) -> tuple[list, list]:
    """The prompts, those over ``limit`` tokens keeping their start and end around :data:`ELLIPSIS` (as
    truncation would drop "Summary:"), and the indices of those cut (with a warning unless ``warn=False``)."""
    prompts = _as_texts(prompts, "prompts")
    lengths = prompt_lengths(tokenizer, prompts)
    shortened = [i for i, n in enumerate(lengths) if n > limit]
    fitted, tail = list(prompts), min(_TAIL_TOKENS, limit // 4)
    for i in shortened:  # cut at token boundaries, keeping the prompt's own text
        spans = tokenizer(prompts[i], add_special_tokens=False, return_offsets_mapping=True,
                          verbose=False)["offset_mapping"]
        end = prompts[i][spans[len(spans) - tail][0]:] if tail else ""
        end = " " + end.lstrip() if end else ""
        keep, length = len(spans) - tail, lengths[i]
        while length > limit:
            keep -= length - limit
            if keep < 1:
                raise PromptTooLongError([(i, lengths[i])], limit, len(prompts))
            fitted[i] = prompts[i][: spans[keep - 1][1]].rstrip() + ELLIPSIS + end
            length = prompt_lengths(tokenizer, [fitted[i]])[0]
    if shortened and warn:
        warnings.warn(f"{len(shortened)} of {len(prompts)} prompts were longer than max_source_length="
                      f"{limit} tokens; their middle was cut (marked '...') so that their start and their "
                      "end (such as 'Summary:') stay whole.", stacklevel=2)
    return fitted, shortened


def generate(model, tokenizer, prompts: Sequence[str], gen_config: GenerationConfig | Profile,
             batch_size: int | None = None, max_source_length: int | None = None, *, truncate: bool = False,
             desc: str = "Generating", progress: bool = True) -> list[str]:
    """One output per prompt, from length-sorted batches; ``gen_config``: a :func:`generation_config` or a
    profile (also giving batch size and limit). A prompt too long is an error unless ``truncate=True``."""
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
    if too_long := [(i, n) for i, n in enumerate(lengths) if n > max_source_length]:
        raise PromptTooLongError(too_long, max_source_length, len(prompts))
    # Longest first: a batch too big for memory fails at once, and the time estimate errs on the safe side.
    order = sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)
    outputs: dict[int, str] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), Bar(total=len(prompts), desc=desc, unit="prompt",
                                         disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                batch = tokenizer([prompts[i] for i in indices], padding=True, return_tensors="pt")
                generated = model.generate(**batch.to(model.device), generation_config=gen_config)
                texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
                outputs.update(zip(indices, (text.strip() for text in texts), strict=True))
                bar.update(len(indices))
    finally:
        model.train(was_training)
    return [outputs[i] for i in range(len(prompts))]


def _as_texts(texts, what: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        kind = "None" if texts is None else type(texts).__name__
        raise TypeError(f"{what} is {kind}, not a list of strings; give a list of texts, e.g. [text]")
    texts = list(texts)
    if (bad := next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)) is not None:
        raise TypeError(f"{what}[{bad}] is {type(texts[bad]).__name__}, not str; give text")
    return texts


# --- ROUGE and confidence intervals ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def load_rouge():
    """The project's ROUGE metric (``utils/metrics/rouge``), loaded once by path with no network."""
    os.environ["HF_EVALUATE_OFFLINE"] = "1"
    import evaluate

    return evaluate.load(str(ROUGE_DIR), keep_in_memory=True)


def rouge_per_example(predictions: Sequence[str], references: Sequence,
                      use_stemmer: bool = True) -> dict[str, np.ndarray]:
    """ROUGE-1/2/L/Lsum F-measure of every prediction against its reference or references (the best counts);
    ``use_stemmer=False`` matches words as written (the reference lab's setting)."""
    predictions, references = _check_pairs(predictions, references)
    scores = load_rouge().compute(predictions=predictions, references=references, use_aggregator=False,
                                  use_stemmer=use_stemmer)
    return {rouge_type: np.asarray(scores[rouge_type], dtype=float) for rouge_type in ROUGE_TYPES}


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Seeded percentile bootstrap confidence interval of the mean of ``values``."""
    return _bootstrap(values, n_resamples, seed, confidence)[1:]


def score_summaries(predictions: Sequence[str], references: Sequence, n_resamples: int = 1000, seed: int = 0,
                    protocol: str = "course") -> dict:
    """Mean ROUGE with 95% intervals (``rouge1``, ``rouge1_ci_low``, ...), ``n`` and ``gen_len_words``;
    protocol "course": per prediction, best reference, stemmed; "lab": per reference, unstemmed."""
    if protocol not in ("course", "lab"):
        raise ValueError(f"protocol={protocol!r}; use one of ('course', 'lab').")
    if protocol == "lab":
        predictions, references = _check_pairs(predictions, references)
        predictions = [p for p, refs in zip(predictions, references, strict=True) for _ in refs]
        references = [r for refs in references for r in refs]
    per_example = rouge_per_example(predictions, references, use_stemmer=protocol == "course")
    return rouge_summary(per_example, predictions, n_resamples, seed)


def rouge_summary(per_example: Mapping[str, np.ndarray], predictions: Sequence[str], n_resamples: int = 1000,
                  seed: int = 0) -> dict:
    """:func:`score_summaries` from ROUGE already computed per example (:func:`rouge_per_example`)."""
    result: dict = {}
    for rouge_type, values in per_example.items():
        result.update(_mean_ci(rouge_type, values, n_resamples, seed))
    words = [len(p.split()) for p in predictions]
    return {**result, "n": len(predictions), "gen_len_words": float(np.mean(words))}


def _mean_ci(name: str, values: np.ndarray, n_resamples: int, seed: int) -> dict[str, float]:
    low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return {name: float(values.mean()), f"{name}_ci_low": low, f"{name}_ci_high": high}


def paired_bootstrap(scores_a: Sequence[float], scores_b: Sequence[float], n_resamples: int = 1000,
                     seed: int = 0) -> dict:
    """Is A better than B on the same examples? Resamples them, each A/B pair together: ``mean_diff`` (A
    minus B), its 95% interval ``ci_low``/``ci_high`` and ``p_a_better`` (the share of resamples A wins)."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must cover the same examples: got {a.size} and {b.size} scores")
    means, low, high = _bootstrap(a - b, n_resamples, seed, 0.95)
    return {"mean_diff": float((a - b).mean()), "ci_low": low, "ci_high": high,
            "p_a_better": float((means > 0).mean())}


def _check_pairs(predictions, references) -> tuple[list[str], list[list[str]]]:
    predictions, references = _as_texts(predictions, "predictions"), [_references(r) for r in references]
    _same_length(predictions, references, "references (one reference, or one list of them, per prediction)")
    if not predictions:
        raise ValueError("nothing to score: predictions is empty")
    return predictions, references


def _references(references) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("no reference answer given; pass at least one")
    return refs


def _same_length(texts, other, what: str) -> None:
    if len(texts) != len(other):
        raise ValueError(f"{len(texts)} predictions but {len(other)} {what}; they must match one to one")


def _bootstrap(values, n_resamples: int, seed: int, confidence: float) -> tuple[np.ndarray, float, float]:
    """The means of ``n_resamples`` seeded resamples of per-example scores and their percentile interval."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty list of per-example scores, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN; score every example before bootstrapping")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    indices = np.random.default_rng(seed).integers(0, len(values), size=(n_resamples, len(values)))
    means = values[indices].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return means, float(low), float(high)


# --- probe metrics ---------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles (a, an, the), squeeze spaces."""
    if not isinstance(text, str):
        raise TypeError(f"answers and labels must be text, got {type(text).__name__} {text!r}; map numeric "
                        "labels (e.g. a Hub ClassLabel) to their names first")
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized reference, else 0.0."""
    answer = normalize_answer(prediction)
    return max(float(answer == normalize_answer(ref)) for ref in _references(references))


def squad_f1(prediction: str, references: str | Sequence[str]) -> float:
    """SQuAD token F1 (word overlap of normalized texts), the best over the references."""
    pred = normalize_answer(prediction).split()

    def f1(ref: list[str]) -> float:
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref or common == 0:
            return float(pred == ref)
        precision, recall = common / len(pred), common / len(ref)
        return 2 * precision * recall / (precision + recall)

    return max(f1(normalize_answer(ref).split()) for ref in _references(references))


def accuracy(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """Share of predictions equal to their label (compared after :func:`normalize_answer`)."""
    _same_length(predictions, labels, "labels")
    return float(np.mean([normalize_answer(p) == normalize_answer(y)
                          for p, y in zip(predictions, labels, strict=True)]))


def valid_label_share(predictions: Sequence[str], options: Sequence) -> float:
    """Share of predictions that are an allowed label at all, right or wrong (a low share: the model stopped
    answering the task). ``options``: one list of labels for all examples, or one list per example."""
    predictions = list(predictions)
    per_example = options if options and not isinstance(options[0], str) else [options] * len(predictions)
    _same_length(predictions, per_example, "option lists")
    allowed = [{normalize_answer(o) for o in opts} for opts in per_example]
    return float(np.mean([normalize_answer(p) in ok for p, ok in zip(predictions, allowed, strict=True)]))


def score_probe(task: str | data.Task, predictions: Sequence[str], examples) -> dict:
    """A probe's ``main_metric``, ``score``, ``n`` and metrics on ``examples`` (a Dataset or dicts): ``qa``:
    f1, exact_match; ``classification``: accuracy, valid_label_share; else rouge1, rouge2, rougeL."""
    try:
        task = data.get_probe(task)
    except data.TaskError as error:
        raise ValueError(str(error)) from None
    predictions, rows = _as_texts(predictions, "predictions"), list(examples)
    if rows and task.answer not in rows[0]:
        raise ValueError(f"examples need the column {task.answer!r}; their columns are {list(rows[0])}")
    references = [row[task.answer] for row in rows]
    _same_length(predictions, references, "examples")
    if task.task_type == "qa":
        metrics = {name: float(np.mean([measure(p, r) for p, r in zip(predictions, references, strict=True)]))
                   for name, measure in (("f1", squad_f1), ("exact_match", exact_match))}
    elif task.task_type == "classification":
        has_options = rows and "options" in rows[0]
        options = [row["options"] for row in rows] if has_options else sorted(set(references))
        metrics = {"accuracy": accuracy(predictions, references),
                   "valid_label_share": valid_label_share(predictions, options)}
    else:
        rouge = rouge_per_example(predictions, references)
        metrics = {name: float(rouge[name].mean()) for name in ("rouge1", "rouge2", "rougeL")}
    return {"main_metric": task.main_metric, "score": metrics[task.main_metric], **metrics, "n": len(rows)}


# --- forgetting measures ---------------------------------------------------------------------------
def forgetting_drop(before: float, after: float) -> dict[str, float]:
    """``absolute`` = before - after (positive: forgotten) and ``relative`` = that / before (NaN when 0)."""
    absolute = float(before) - float(after)
    return {"absolute": absolute, "relative": absolute / float(before) if before else float("nan")}


def max_minus_final(history: Sequence[float]) -> float:
    """Best earlier checkpoint score minus the final one (Chaudhry et al. 2018); positive: forgotten."""
    scores = np.asarray(history, dtype=float)
    if scores.ndim != 1 or scores.size < 2:
        raise ValueError("history needs the scores of at least two checkpoints, in training order")
    return float(scores[:-1].max() - scores[-1])


def forgetting_table(scores: Mapping[str, Mapping[str, float]], base: str = "base") -> pd.DataFrame:
    """Probe scores (``scores[model][probe]``) and drops from ``base``, one row per probe plus ``average``;
    columns: the base model, then per other model its score, ``<model> drop`` and ``<model> rel drop``."""
    if base not in scores:
        raise ValueError(f"no scores for the base model {base!r}; models given: {list(scores)}")
    probes = list(scores[base])
    rows = {probe: {m: s.get(probe, np.nan) for m, s in scores.items()} for probe in probes}
    rows["average"] = {m: float(np.mean([rows[p][m] for p in probes])) for m in scores}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if missing := table.columns[table.isna().any()].tolist():
        raise ValueError(f"models {missing} lack scores for some probes of {base!r}: {probes}")
    columns, before = {base: table[base]}, table[base]
    for model in (m for m in scores if m != base):
        drop = before - table[model]  # as forgetting_drop: the relative drop is NaN where the base scores 0
        columns.update({model: table[model], f"{model} drop": drop,
                        f"{model} rel drop": (drop / before).where(before != 0)})
    return pd.DataFrame(columns).rename_axis("probe")


# --- facts beside ROUGE: fact recall and grounding -------------------------------------------------
GROUNDING_KEYS = ("grounding", "grounding_ci_low", "grounding_ci_high", "grounding_checked")
FACT_RECALL_KEYS = ("fact_recall", "fact_recall_ci_low", "fact_recall_ci_high")


def facts_per_example(predictions: Sequence[str], dialogues: Sequence[str],
                      facts: Sequence[Sequence[str]] | None = None) -> dict[str, np.ndarray]:
    """Per summary: ``grounding``, ``grounding_checked`` (1.0 when it has a specific to check) and, given
    ``facts`` (one list per dialogue), ``fact_recall`` (NaN for a dialogue with no recorded facts)."""
    predictions, dialogues = _as_texts(predictions, "predictions"), _as_texts(dialogues, "dialogues")
    _same_length(predictions, dialogues, "dialogues")
    result = {"grounding": np.array([grounding(p, d) for p, d in zip(predictions, dialogues, strict=True)]),
              "grounding_checked": np.array([float(bool(checkable_items(p))) for p in predictions])}
    if facts is not None:
        facts = [list(f or []) for f in facts]
        _same_length(predictions, facts, "fact lists")
        result["fact_recall"] = np.array([fact_recall(p, f) for p, f in zip(predictions, facts, strict=True)])
    return result


def score_facts(predictions: Sequence[str], dialogues: Sequence[str],
                facts: Sequence[Sequence[str]] | None = None, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Mean ``grounding`` with its 95% bootstrap interval, ``grounding_checked`` (the share of summaries with
    a specific to check) and, where some dialogue has ``facts``, ``fact_recall`` over those dialogues."""
    per_example = facts_per_example(predictions, dialogues, facts)
    result = {**_mean_ci("grounding", per_example["grounding"], n_resamples, seed),
              "grounding_checked": float(per_example["grounding_checked"].mean())}
    recall = per_example.get("fact_recall")
    if recall is not None and not np.isnan(recall).all():
        result.update(_mean_ci("fact_recall", recall[~np.isnan(recall)], n_resamples, seed))
    return result


def lead_summaries(dialogues: Sequence[str], k: int) -> list[str]:
    """A trivial baseline: the first ``k`` utterances of each dialogue, verbatim (one per line)."""
    if k < 1:
        raise ValueError(f"k must be at least 1 utterance, got {k}")
    return ["\n".join(d.strip().split("\n")[:k]) for d in _as_texts(dialogues, "dialogues")]


def rouge_high_facts_wrong(table: pd.DataFrame) -> pd.Series | None:
    """The best-ROUGE-1 row of a scored ``table`` whose ``fact_recall`` (else ``grounding``) is below 0.5,
    with ``measure`` and ``rouge1_rank`` (share of rows with a lower ROUGE-1); None when no row is below."""
    measure = "fact_recall" if "fact_recall" in table else "grounding"
    if measure not in table or (wrong := table[table[measure] < 0.5]).empty:
        return None
    row = wrong.loc[wrong["rouge1"].idxmax()].astype(object)  # a copy that can also hold the measure's name
    row["measure"], row["rouge1_rank"] = measure, float((table["rouge1"] < row["rouge1"]).mean())
    return row


_ARTICLE_WORDS = {"a", "an", "the"}
_NUMBER_WORDS = set("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty".split())
_NOT_NAMES = {"I", "Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "St"}  # titles: the name after one is checked
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


def normalize(text: str) -> list[str]:
    """The tokens facts are matched on: lowercased speaker tags, numbers (``$30``, ``7:30``) and words, with no
    possessive ``'s``, thousands separators, zero cents, articles or punctuation; times as ``7 pm``."""
    text = _POSSESSIVE.sub("", text.replace("\u2019", "'").replace("\u2018", "'"))
    text = _CENTS.sub(r"\1", _THOUSANDS.sub("", text))  # a time as "7 pm" or "7:30 pm":
    text = _TIME.sub(lambda m: f"{m[1]}{'' if m[2] in (None, '00') else ':' + m[2]} {m[3].lower()}m", text)
    text = text.lower()
    return [token for token in _TOKEN.findall(text) if token not in _ARTICLE_WORDS]


def contains(text: str | Sequence[str], phrase: str | Sequence[str]) -> bool:
    """Does ``phrase`` occur in ``text`` as a run of whole normalized tokens? (Either may be normalized.)"""
    haystack = normalize(text) if isinstance(text, str) else list(text)
    needle = normalize(phrase) if isinstance(phrase, str) else list(phrase)
    return bool(needle) and f" {' '.join(needle)} " in f" {' '.join(haystack)} "  # whole tokens only


def fact_variants(fact: str) -> list[str]:
    """The accepted forms of a recorded fact (``"grey | gray"`` -> ``["grey", "gray"]``)."""
    return [v.strip() for v in fact.split("|") if v.strip()]


def fact_found(fact: str, summary: str | Sequence[str]) -> bool:
    """Is one of the fact's variants in the summary (normalized, whole tokens)?"""
    tokens = normalize(summary) if isinstance(summary, str) else summary
    return any(contains(tokens, variant) for variant in fact_variants(fact))


def fact_recall(summary: str, facts: Sequence[str]) -> float:
    """Share of ``facts`` found in ``summary`` (see :func:`fact_found`); NaN when there are no facts."""
    facts = list(facts)
    return (len(facts) - len(missed_facts(summary, facts))) / len(facts) if facts else float("nan")


def missed_facts(summary: str, facts: Sequence[str]) -> list[str]:
    """The recorded facts that ``summary`` does not contain."""
    tokens = normalize(summary)
    return [fact for fact in facts if not fact_found(fact, tokens)]


def checkable_items(summary: str) -> list[str]:
    """The specifics :func:`grounding` looks for, each once, in order: speaker tags, times, numbers with
    digits, and names: capitalized words not opening a sentence (nor after ``Mr.``), save ``I`` and titles."""
    items = [m[0] for m in _TAG.finditer(summary)]
    rest = _TAG.sub("tag", summary)  # lowercase stand-ins keep the sentence boundaries
    items += [m[0].rstrip(".") for m in _TIME.finditer(rest)]
    rest = _TIME.sub(lambda m: "time." if m[0].endswith(".") else "time", rest)
    items += [m[0] for m in _NUMBER.finditer(rest)]
    for match in _CAPITALIZED.finditer(rest):
        before, word = rest[: match.start()], re.sub(r"'s$", "", match[0])
        starts_sentence = _SENTENCE_END.search(before) and not _ABBREVIATION_END.search(before)
        if word not in _NOT_NAMES and not starts_sentence:
            items.append(word)
    keys = [" ".join(normalize(item)) for item in items]  # each once: the first of those normalized alike
    return [items[i] for i, key in enumerate(keys) if key and key not in keys[:i]]


def grounding(summary: str, dialogue: str) -> float:
    """Share of the summary's :func:`checkable_items` found in the dialogue; 1.0 for a summary without any
    (it claims no specifics: ``grounding_checked`` counts the summaries that have some)."""
    items, tokens = checkable_items(summary), normalize(dialogue)
    return sum(contains(tokens, item) for item in items) / len(items) if items else 1.0


def ungrounded_items(summary: str, dialogue: str) -> list[str]:
    """The summary's :func:`checkable_items` that do not occur in the dialogue."""
    tokens = normalize(dialogue)
    return [item for item in checkable_items(summary) if not contains(tokens, item)]


def is_number(token: str) -> bool:
    """Is a normalized token a number (``5``, ``$30``, ``7:30``) or a number word (``five``)?"""
    return token in _NUMBER_WORDS or bool(re.fullmatch(r"\$?\d[\d:.-]*", token))


def stated_in(texts: Sequence[str]) -> Callable[[str], bool]:
    """A test for a fact: is one of its variants in one of ``texts`` (whole tokens, never across texts)?"""
    corpus = "\n".join(f" {' '.join(normalize(text))} " for text in texts)  # one search; "\n" ends each text

    def stated(fact: str) -> bool:
        variants = (normalize(variant) for variant in fact_variants(fact))
        return any(tokens and f" {' '.join(tokens)} " in corpus for tokens in variants)
    return stated
