"""What a learner should see and what the course must reach: :data:`EXPECTED`, one :class:`Expectation` per
number a lesson shows (``tiny`` only): a generous range, what to check when off and, for a course target, the
bound a whole ``make course`` run must meet; :func:`note` shows a run's values, :func:`check` the targets."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from utils.config import Profile


@dataclass(frozen=True)
class Target:
    """A course target: the number ``op`` (``>=``, ``<=``, ``>``) ``bound``; ``name`` says it in reports."""

    op: str
    bound: float
    name: str


@dataclass(frozen=True)
class Expectation:
    """A number a lesson shows, its range, what to check when off, and its ``metrics.json`` path (or None)."""

    label: str
    low: float
    high: float
    check: str
    metrics: str | None = None
    target: Target | None = None

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"expectation {self.label!r}: low {self.low} is above high {self.high}")
        if self.target is not None and not self.low <= self.target.bound <= self.high:
            raise ValueError(f"{self.label!r}: the target bound {self.target.bound} is outside the range")

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the range (a NaN never does)."""
        return self.low <= value <= self.high

    def read(self, metrics: Mapping) -> float:
        """The number at ``metrics`` (``"a.b"`` or ``"a.b - c.d"``) in a run's, else KeyError or TypeError."""
        if self.metrics is None:
            raise KeyError(self.label)
        first, *rest = [functools.reduce(operator.getitem, path.strip().split("."), metrics)
                        for path in self.metrics.split(" - ")]
        return float(first - sum(rest))


#: ``EXPECTED[profile]["<lesson>.<name>"]``: scores are fractions in [0, 1], as the lessons compute them.
EXPECTED: dict[str, dict[str, Expectation]] = {"tiny": {
    "01.zero_shot.rouge1": Expectation(
        "zero-shot ROUGE-1, all test dialogues", 0.02, 0.35,  # FLAN-T5-base: 0.29
        "the model folder (data/models/tiny-flan-t5) and the generation config printed in section 3; the "
        "DialogSum-style data set is held out of the tiny model's training, so a score near the fine-tuned "
        "models' (0.5 and more) means it was not", metrics="zero_shot.rouge1"),
    "01.zero_shot.gen_len_words": Expectation(
        "zero-shot summary length, words", 1.0, 30.0,
        "max_new_tokens in the generation config; short outputs are normal: the tiny model learned to "
        "summarize from one-sentence chat summaries", metrics="zero_shot.gen_len_words"),
    "01.raw.new_tokens": Expectation(
        "tokens generated in the raw round trip", 1, 64,
        "that the raw call passed generation_config=gen_config (max_new_tokens caps it)"),
    "02.templates.rouge1_spread": Expectation(
        "best minus worst template's zero-shot ROUGE-1 (validation)", 0.0, 0.30,
        "that every template was scored on the same dialogues with the same generation config"),
    "02.chosen.rouge1": Expectation(
        "the template chosen on validation, its test ROUGE-1", 0.0, 0.35,
        "that the choice used validation dialogues and the score test dialogues"),
    "03.full.rouge1": Expectation(
        "full fine-tuning, test ROUGE-1", 0.35, 0.80,
        "the training curves (did the loss fall?), the learning rate and the step budget printed in "
        "section 3; a score near zero-shot means the run did not train", metrics="single_task.full.rouge1"),
    "03.lora.rouge1": Expectation(
        "LoRA, test ROUGE-1", 0.20, 0.75,
        "the LoRA settings printed in section 4 (rank, target modules) and its learning rate",
        metrics="single_task.lora.rouge1"),
    "03.full.gain": Expectation(
        "full fine-tuning's ROUGE-1 gain over zero-shot", 0.25, 0.75,
        "that zero-shot and fine-tuned models were scored with the same prompt and test dialogues",
        metrics="single_task.gain_over_zero_shot.full",
        target=Target(">=", 0.25, "full fine-tuning gains ROUGE-1 over zero-shot")),
    "03.lora.trainable_fraction": Expectation(
        "share of parameters LoRA trains", 0.005, 0.20,
        "lora_targets and lora_r of the profile: every listed module gets an adapter",
        metrics="single_task.lora.trainable_fraction"),
    "04.full.average_drop": Expectation(
        "full fine-tune: average probe score drop from the base", 0.20, 0.90,
        "that lesson 03's full run trained (its target ROUGE-1 below) and that every model was probed with "
        "the same prompts; a drop near 0 means the fine-tune barely moved the weights",
        metrics="forgetting.average.base - forgetting.average.full"),
    "04.full.average_drop_ci_low": Expectation(  # a drop the rows cannot explain; its size depends on seed
        "full fine-tune: low end of the average drop's 95% interval", 0.0, 0.90,
        "the paired intervals of section 2: a low end at or below 0 means no measurable forgetting",
        metrics="forgetting.average_drop_ci.full.low",
        target=Target(">", 0.0, "full fine-tuning lowers the average probe score (95% interval above 0)")),
    "04.lora.average_drop": Expectation(
        "LoRA: average probe score drop from the base", -0.05, 0.80,
        "the LoRA settings (lora_targets, rank, learning rate); a negative drop beyond a few "
        "points is unusual", metrics="forgetting.average.base - forgetting.average.lora"),
    "04.full.valid_label_share": Expectation(
        "full fine-tune: share of label-probe answers that are a valid label", 0.0, 0.60,
        "the example outputs of section 4: a fine-tune that still answers with labels forgot little"),
    "04.full.target_rouge1": Expectation(
        "full fine-tune: target ROUGE-1 (what it was tuned for)", 0.35, 0.80,
        "lesson 03's training curves; scores near zero-shot mean the run did not train",
        metrics="forgetting.target_rouge1.full"),
    "05.multitask.probe_retention": Expectation(
        "multi-task: probe average as a share of the base model's", 0.75, 1.15,
        "the mixture's composition in section 1 (every probe task present) and that the run trained on it",
        metrics="multitask.probe_retention",
        target=Target(">=", 0.9, "multi-task tuning keeps the probes (share of the base's average)")),
    "05.multitask.target_gap": Expectation(
        "multi-task: target ROUGE-1 behind single-task full", -0.10, 0.20,
        "TARGET_SHARE and the step budget: a much larger gap means the new task got too few examples",
        metrics="multitask.target_gap_to_single_task_full",
        target=Target("<=", 0.1, "multi-task ROUGE-1 behind single-task full by at most")),
    "05.multitask.target_rouge1": Expectation(
        "multi-task: target ROUGE-1", 0.30, 0.80,
        "the multi-task run's training loss (multi.log_history) and the mixture's summarization share",
        metrics="multitask.target.rouge1"),
    "05.full.probe_retention": Expectation(
        "single-task full: probe average as a share of the base model's", 0.0, 0.80,
        "lesson 04's drop table: single-task full fine-tuning should forget plainly in the tiny profile"),
}}


class UnknownExpectation(KeyError):
    """A notebook named a number that has no entry in :data:`EXPECTED` (a typo, or a missing entry)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def note(lesson: str, values: Mapping[str, float], profile: Profile) -> pd.DataFrame:
    """This run's ``values`` (names without the lesson prefix) beside the expected ranges, with what to check
    when off. A name no profile knows fails in every profile (CI's ``smoke`` too), so a typo cannot hide."""
    known = {key for ranges in EXPECTED.values() for key in ranges}
    unknown = sorted(f"{lesson}.{key}" for key in values if f"{lesson}.{key}" not in known)
    if unknown:
        listed = ", ".join(sorted(k.split(".", 1)[1] for k in known if k.startswith(f"{lesson}."))) or "none"
        raise UnknownExpectation(f"No expected range for {unknown} in utils/expectations.py. Lesson {lesson} "
                                 f"has: {listed}. Fix the name, or add an Expectation to EXPECTED.")
    expected = {key: e for key, e in EXPECTED.get(profile.name, {}).items() if key.split(".", 1)[0] == lesson}
    rows = []
    for key, value in values.items():
        entry = expected.get(f"{lesson}.{key}")
        ok = entry is None or entry.holds(float(value))
        rows.append({"number": key if entry is None else entry.label, "this run": float(value),
                     "expected": "" if entry is None else f"{entry.low:g} to {entry.high:g}",
                     "status": "" if entry is None else "in range" if ok else "OUT OF RANGE",
                     "if off, check": "" if ok else entry.check})
    table = pd.DataFrame(rows).set_index("number")
    if not expected:
        why = ("compare with the reference lab's published figures" if profile.name == "full"
               else "its budgets are too small to expect anything")
        print(f"No expected ranges for the {profile.name!r} profile ({why}): this run's values only.")
        return table[["this run"]]
    off = int((table["status"] == "OUT OF RANGE").sum())
    print(f"{len(table) - off} of {len(table)} values in the expected range"
          + (f"; {off} out of range: see 'if off, check'." if off else "."))
    return table


# --- the course's targets, checked on a finished run's metrics.json at the end of `make course` ---------
class TargetsMissed(RuntimeError):
    """A finished course run missed one or more of its profile's targets."""


def targets_for(profile_name: str) -> dict[str, Expectation]:
    """The entries of a profile that are course targets (none for ``smoke`` and ``full``)."""
    return {key: e for key, e in EXPECTED.get(profile_name, {}).items() if e.target is not None}


def check(metrics: Mapping, profile_name: str) -> list[dict]:
    """One row per target of the profile: its value, the bound, whether it is met and a note (the lesson)."""
    rows = []
    for key, entry in targets_for(profile_name).items():
        target, lesson = entry.target, key.split(".", 1)[0]
        compare = {">=": operator.ge, "<=": operator.le, ">": operator.gt}[target.op]
        try:
            value = entry.read(metrics)
            met, note = compare(value, target.bound), f"missed (lesson {lesson})"
        except (KeyError, TypeError):
            value, met, note = None, False, f"missing from metrics.json: run lesson {lesson}"
        rows.append({"target": target.name, "value": value, "bound": f"{target.op} {target.bound:g}",
                     "met": met, "note": "" if met else note})
    return rows


def markdown(rows: list[dict], profile_name: str) -> list[str]:
    """The targets as report lines (a sentence when the profile has none)."""
    if not rows:
        return [f"The `{profile_name}` profile has no course targets (they are set for `tiny`).", ""]
    lines = ["| target | value | bound | met |", "|---|---|---|---|"]
    for row in rows:
        value = "missing" if row["value"] is None else f"{row['value']:.3f}"
        lines.append(f"| {row['target']} | {value} | {row['bound']} | {'yes' if row['met'] else '**NO**'} |")
    return lines + [""]


def raise_if_missed(rows: list[dict]) -> None:
    """Raise :class:`TargetsMissed` listing every missed target."""
    missed = [f"{row['target']}: {row['note']}" + ("" if row["value"] is None else
                                                   f" ({row['value']:.3f}, needs {row['bound']})")
              for row in rows if not row["met"]]
    if missed:
        raise TargetsMissed(f"{len(missed)} of {len(rows)} course targets missed: {'; '.join(missed)}")
