"""Facts beside ROUGE: does a summary carry the dialogue's facts, and are its specifics in the dialogue?

ROUGE counts shared words, and a summary in the references' phrasing shares most of them even when its slot
values (the item, the day, the price) are another dialogue's. Two checks look at exactly those values:

* :func:`fact_recall` -- the share of a dialogue's recorded facts (the ``facts`` column of the synthetic
  corpus, see ``data/README.md``) that a summary contains;
* :func:`grounding` -- the share of a summary's specifics (numbers, times, amounts, names, speaker tags) that
  occur in the dialogue. It needs no annotation, so it works on any data set, DialogSum from the Hub included.

Both compare *normalized* token sequences (:func:`normalize`). This module is plain Python (no torch), so the
corpus generator uses the same matching to decide which slot values are facts; :mod:`utils.evaluation`
averages the per-summary values with bootstrap intervals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

#: Separates the accepted variants of one fact: ``"grey | gray"`` is found when either form is.
_VARIANT_SEPARATOR = " | "
_ARTICLES = {"a", "an", "the"}
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
    return [token for token in _TOKEN.findall(text) if token not in _ARTICLES]


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
