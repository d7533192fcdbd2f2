"""ROUGE scoring, side by side: rouge_score's own tokenizer against the course metric's remembering one.

A course run scores the same 250 test dialogues' references again and again (every model, every prompt,
every lesson's kernel), and Porter-stemming their words was most of ROUGE's time. The course's metric
(``utils/metrics/rouge``) remembers each text's tokens and each word's stem. Both ways score the same
predictions (a lesson's scoreboard: several models' summaries, here the lead-k summaries standing in for them)
against the same references, in one process, and must give identical scores::

    python -m benchmarks.rouge_speed               # the tiny profile's test split, 6 rounds of scoring
"""

from __future__ import annotations

import argparse
import sys
import time

from rouge_score import rouge_scorer

from utils import data, evaluation
from utils.config import Profile, get_profile


class ScoresDiffer(AssertionError):
    """The two tokenizers gave different ROUGE: the metric would no longer be rouge_score's."""


def metric_module():
    """The course's ROUGE metric module (``utils/metrics/rouge/rouge.py``), as ``evaluate`` loaded it."""
    return sys.modules[type(evaluation.load_rouge()).__module__]


def score_rounds(scorer, predictions_by_round: list[list[str]], references: list[list[str]]) -> list[list[float]]:
    """Each round's ROUGE-1/2/L/Lsum F-measures, each text prepared as the course's metric prepares it."""
    lines = metric_module().sentence_lines
    return [[score.fmeasure for prediction, refs in zip(predictions, references, strict=True)
             for score in scorer.score_multi([lines(r) for r in refs], lines(prediction)).values()]
            for predictions in predictions_by_round]


def compare(profile: Profile, rounds: int = 6) -> dict:
    """Seconds of ``rounds`` rounds of scoring each way (rouge_score's tokenizer first), and the speedup."""
    rouge = metric_module()
    test = data.target_test(profile)
    references = list(test["references"])
    predictions = [evaluation.lead_summaries(test["dialogue"], k % 3 + 1) for k in range(rounds)]
    ways = {"rouge_score's tokenizer": rouge_scorer.RougeScorer(rouge.DEFAULT_ROUGE_TYPES, use_stemmer=True),
            "the course's (remembering)": rouge_scorer.RougeScorer(
                rouge.DEFAULT_ROUGE_TYPES, tokenizer=rouge.RememberingTokenizer(use_stemmer=True))}
    seconds, scores = {}, {}
    for name, scorer in ways.items():
        started = time.perf_counter()
        scores[name] = score_rounds(scorer, predictions, references)
        seconds[name] = time.perf_counter() - started
    first, second = scores.values()
    if first != second:
        raise ScoresDiffer("the remembering tokenizer changed a ROUGE score")
    base, course = seconds.values()
    return {"dialogues": len(references), "rounds": rounds, "seconds": seconds, "speedup": base / course}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of scoring (models x prompts)")
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args(argv)
    figures = compare(get_profile(args.profile), args.rounds)
    print(f"ROUGE of {figures['dialogues']} dialogues x {figures['rounds']} rounds, identical scores:")
    for name, seconds in figures["seconds"].items():
        print(f"  {name}: {seconds:.2f} s")
    print(f"  speedup {figures['speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
