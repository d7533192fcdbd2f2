"""ROUGE as an `evaluate` metric module kept in the project, so it loads offline by path.

    import evaluate
    rouge = evaluate.load("utils/metrics/rouge")   # a folder path: no Hub, no network
    rouge.compute(predictions=["the cat sat"], references=[["a cat sat down", "the cat sat"]])

It wraps Google's ``rouge_score`` package and differs from the Hub's ``rouge`` module in three ways that
matter for honest evaluation: stemming is on by default, ROUGE-Lsum sees real sentence boundaries (split
with a regex, no NLTK download), and aggregation is a plain mean (the Hub module's default bootstrap
aggregator is unseeded, so its numbers change from run to run).
"""

import functools
import re

import datasets
import evaluate
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenize, tokenizers

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W04-1013",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
ROUGE (Recall-Oriented Understudy for Gisting Evaluation) compares a generated summary with one or more
human references by counting overlapping units: unigrams (rouge1), bigrams (rouge2) and the longest common
subsequence, over the whole text (rougeL) or sentence by sentence (rougeLsum).

Texts are lowercased and every non-alphanumeric character becomes a space (rouge_score's default
tokenizer); with use_stemmer=True (the default here) words are reduced to their Porter stem, so "talked"
matches "talking". For rougeLsum, sentences are split with a regex on ".", "!" or "?" followed by
whitespace and joined with newlines, which is what rouge_score expects; without this step rougeLsum
silently equals rougeL. With several references per prediction, the best-matching reference counts
(rouge_score's score_multi). The scores are F-measures in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Computes ROUGE F-measures of predictions against references.
Args:
    predictions (list of str): generated texts.
    references (list of str, or list of list of str): one reference, or several references, per
        prediction. Use the same form for every example of one call.
    rouge_types (list of str, optional): any of "rouge1" ... "rouge9", "rougeL", "rougeLsum".
        Defaults to ["rouge1", "rouge2", "rougeL", "rougeLsum"].
    use_aggregator (bool, default True): True returns the mean F-measure of each type;
        False returns the list of per-example F-measures (for bootstrap confidence intervals).
    use_stemmer (bool, default True): apply the Porter stemmer before matching.
    split_sentences (bool, default True): split sentences for rougeLsum; False reproduces the common
        mistake where rougeLsum equals rougeL.
Returns:
    dict mapping each rouge type to a float (aggregated) or a list of floats (per example).
Examples:
    >>> rouge = evaluate.load("utils/metrics/rouge")
    >>> rouge.compute(predictions=["hello there"], references=["hello there"])["rouge1"]
    1.0
"""

DEFAULT_ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentence_lines(text):
    """Put each sentence on its own line: split after '.', '!' or '?' followed by whitespace."""
    return "\n".join(part for part in _SENTENCE_END.split(text.strip()) if part)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    """ROUGE-1/2/L/Lsum with stemming, sentence-split Lsum, multi-reference and a plain mean."""

    def _info(self):
        string = datasets.Value("string", id="sequence")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": string, "references": datasets.List(string)}),
                datasets.Features({"predictions": string, "references": string}),
            ],
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://aclanthology.org/W04-1013", "https://pypi.org/project/rouge-score/"],
        )

    def _compute(
        self,
        predictions,
        references,
        rouge_types=None,
        use_aggregator=True,
        use_stemmer=True,
        split_sentences=True,
    ):
        rouge_types = list(rouge_types or DEFAULT_ROUGE_TYPES)
        scorer = rouge_scorer.RougeScorer(rouge_types, tokenizer=_tokenizer(use_stemmer))
        prepare = sentence_lines if split_sentences else _unchanged
        per_type = {rouge_type: [] for rouge_type in rouge_types}
        for prediction, refs in zip(predictions, references, strict=True):
            refs = [refs] if isinstance(refs, str) else list(refs)
            if not refs:
                raise ValueError("Every prediction needs at least one reference; got an empty list.")
            scores = scorer.score_multi([prepare(ref) for ref in refs], prepare(prediction))
            for rouge_type in rouge_types:
                per_type[rouge_type].append(scores[rouge_type].fmeasure)
        if not use_aggregator:
            return per_type
        return {t: (sum(values) / len(values) if values else 0.0) for t, values in per_type.items()}


def _unchanged(text):
    return text


class RememberingTokenizer(tokenizers.Tokenizer):
    """rouge_score's default tokenizer (same tokens, same stems) that remembers each text's tokens and each
    word's Porter stem: a course scores the same references, and the same words, again and again, and
    stemming was most of the time ROUGE took (``benchmarks/rouge_speed.py``)."""

    def __init__(self, use_stemmer):
        self.stem = functools.lru_cache(maxsize=None)(porter.PorterStemmer().stem) if use_stemmer else None
        self._tokens = functools.lru_cache(maxsize=2**16)(self._split)

    def tokenize(self, text):
        return self._tokens(text)

    def _split(self, text):
        return tokenize.tokenize(text, self if self.stem else None)  # calls self.stem(word)


@functools.cache
def _tokenizer(use_stemmer):
    """One :class:`RememberingTokenizer` per setting for the whole process."""
    return RememberingTokenizer(bool(use_stemmer))
