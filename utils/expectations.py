"""What a learner should see: the expected range of each number a lesson shows, in one table.

Each lesson ends a section with a "What you should see" note. The note's words stay in the notebook; the
ranges live here, so that they can be updated in one place when the course's model changes. The ranges are
generous, a sanity check for learners (a number far outside means something went wrong), not a test: the
course's targets are checked by :mod:`utils.targets`.

Only the ``tiny`` profile has ranges: ``smoke`` trains too little to expect anything, and ``full`` runs
FLAN-T5-base on DialogSum, whose yardstick is the reference lab's published figures.

In a notebook::

    expectations.note("01", {"zero_shot.rouge1": scores["rouge1"]}, profile)

shows this run's values beside the ranges and, for a value out of range, what to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from utils.config import Profile


@dataclass(frozen=True)
class Expectation:
    """A number a lesson shows, the range it should fall in, and what to check when it does not."""

    label: str
    low: float
    high: float
    check: str

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"expectation {self.label!r}: low {self.low} is above high {self.high}")

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the range (a NaN never does)."""
        return self.low <= value <= self.high


#: ``EXPECTED[profile]["<lesson>.<name>"]``: scores are fractions in [0, 1], as the lessons compute them.
EXPECTED: dict[str, dict[str, Expectation]] = {
    "tiny": {
        # 01: the zero-shot baseline
        "01.zero_shot.rouge1": Expectation(
            "zero-shot ROUGE-1, all test dialogues", 0.02, 0.35,  # 0.35: issue 14's upper bound (FLAN-T5-base: 0.29)
            "the model folder (data/models/tiny-flan-t5) and the generation config printed in section 3; "
            "the DialogSum-style data set is held out of the tiny model's training, so a score near the "
            "fine-tuned models' (0.5 and more) means it was not"),
        "01.zero_shot.gen_len_words": Expectation(
            "zero-shot summary length, words", 1.0, 30.0,
            "max_new_tokens in the generation config; short outputs are normal: the tiny model learned to "
            "summarize from one-sentence chat summaries"),
        "01.raw.new_tokens": Expectation(
            "tokens generated in the raw round trip", 1, 64,
            "that the raw call passed generation_config=gen_config (max_new_tokens caps it)"),
        # 02: prompt templates
        "02.templates.rouge1_spread": Expectation(
            "best minus worst template's zero-shot ROUGE-1 (validation)", 0.0, 0.30,
            "that every template was scored on the same dialogues with the same generation config"),
        "02.chosen.rouge1": Expectation(
            "the template chosen on validation, its test ROUGE-1", 0.0, 0.35,
            "that the choice used validation dialogues and the score test dialogues"),
        # 03: single-task fine-tuning
        "03.full.rouge1": Expectation(
            "full fine-tuning, test ROUGE-1", 0.35, 0.80,
            "the training curves (did the loss fall?), the learning rate and the step budget printed in "
            "section 3; a score near zero-shot means the run did not train"),
        "03.lora.rouge1": Expectation(
            "LoRA, test ROUGE-1", 0.20, 0.75,
            "the LoRA settings printed in section 4 (rank, target modules) and its learning rate"),
        "03.full.gain": Expectation(
            "full fine-tuning's ROUGE-1 gain over zero-shot", 0.25, 0.75,
            "that zero-shot and fine-tuned models were scored with the same prompt and test dialogues"),
        "03.lora.trainable_fraction": Expectation(
            "share of parameters LoRA trains", 0.005, 0.20,
            "lora_targets and lora_r of the profile: every listed module gets an adapter"),
        # 04: catastrophic forgetting
        "04.full.average_drop": Expectation(
            "full fine-tune: average probe score drop from the base", 0.20, 0.90,
            "that lesson 03's full run trained (its target ROUGE-1 below) and that every model was probed with "
            "the same prompts; a drop near 0 means the fine-tune barely moved the weights"),
        "04.lora.average_drop": Expectation(
            "LoRA: average probe score drop from the base", -0.05, 0.80,
            "the LoRA settings (lora_targets, rank, learning rate); a negative drop beyond a few points is unusual"),
        "04.full.valid_label_share": Expectation(
            "full fine-tune: share of label-probe answers that are a valid label", 0.0, 0.60,
            "the example outputs of section 4: a fine-tune that still answers with labels forgot little"),
        "04.full.target_rouge1": Expectation(
            "full fine-tune: target ROUGE-1 (what it was tuned for)", 0.35, 0.80,
            "lesson 03's training curves; scores near zero-shot mean the run did not train"),
        # 05: multi-task instruction tuning
        "05.multitask.probe_retention": Expectation(
            "multi-task: probe average as a share of the base model's", 0.75, 1.15,
            "the mixture's composition in section 1 (every probe task present) and that the run trained on it"),
        "05.multitask.target_gap": Expectation(
            "multi-task: target ROUGE-1 behind single-task full", -0.10, 0.20,
            "TARGET_SHARE and the step budget: a much larger gap means the new task got too few examples"),
        "05.multitask.target_rouge1": Expectation(
            "multi-task: target ROUGE-1", 0.30, 0.80,
            "the multi-task run's training loss (multi.log_history) and the mixture's summarization share"),
        "05.full.probe_retention": Expectation(
            "single-task full: probe average as a share of the base model's", 0.0, 0.80,
            "lesson 04's drop table: single-task full fine-tuning should forget plainly in the tiny profile"),
    },
}


class UnknownExpectation(KeyError):
    """A notebook named a number that has no entry in :data:`EXPECTED` (a typo, or a missing entry)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def known_keys() -> set[str]:
    """Every ``<lesson>.<name>`` key of any profile."""
    return {key for ranges in EXPECTED.values() for key in ranges}


def ranges(lesson: str, profile: Profile) -> dict[str, Expectation]:
    """The expected ranges of one lesson (``"01"``) under a profile (empty where it has none)."""
    return {key: e for key, e in EXPECTED.get(profile.name, {}).items() if key.split(".", 1)[0] == lesson}


def note(lesson: str, values: Mapping[str, float], profile: Profile) -> pd.DataFrame:
    """This run's values beside the expected ranges, one row each; an out-of-range value says what to check.

    ``values`` maps names without the lesson prefix (``"zero_shot.rouge1"``) to this run's numbers. Every
    name must have an entry in :data:`EXPECTED` (under any profile), so a typo fails here in every profile,
    CI's ``smoke`` included. Prints one line saying how many values are in range, or why there are no ranges.
    """
    name = profile.name
    unknown = sorted(f"{lesson}.{key}" for key in values if f"{lesson}.{key}" not in known_keys())
    if unknown:
        listed = ", ".join(sorted(k.split(".", 1)[1] for k in known_keys() if k.startswith(f"{lesson}."))) or "none"
        raise UnknownExpectation(
            f"No expected range for {unknown} in utils/expectations.py. Lesson {lesson} has: {listed}. "
            "Fix the name, or add an Expectation to EXPECTED.")
    expected = ranges(lesson, profile)
    rows = []
    for key, value in values.items():
        value = float(value)
        entry = expected.get(f"{lesson}.{key}")
        if entry is None:
            rows.append({"number": key, "this run": value, "expected": "", "status": "", "if off, check": ""})
            continue
        ok = entry.holds(value)
        rows.append({"number": entry.label, "this run": value, "expected": f"{entry.low:g} to {entry.high:g}",
                     "status": "in range" if ok else "OUT OF RANGE", "if off, check": "" if ok else entry.check})
    table = pd.DataFrame(rows).set_index("number")
    if not expected:
        print(f"No expected ranges for the {name!r} profile ("
              + ("compare with the reference lab's published figures" if name == "full"
                 else "its budgets are too small to expect anything") + "): this run's values only.")
        return table[["this run"]]
    off = int((table["status"] == "OUT OF RANGE").sum())
    print(f"{len(table) - off} of {len(table)} values in the expected range"
          + (f"; {off} out of range: see 'if off, check'." if off else "."))
    return table
