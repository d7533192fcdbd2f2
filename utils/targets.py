"""The course's targets, checked on a finished run's ``metrics.json``: what ``make course`` asserts at its end.

Each :class:`Target` reads one number from the metrics (computed by the lessons, never typed here) and
compares it with a bound. Targets belong to profiles: the ``tiny`` course is sized to meet them on a laptop
CPU; ``smoke`` (CI's seconds-long budgets) learns too little to meet any, and ``full`` reproduces the
reference lab, whose own figures are the comparison there. Adding a target is one entry in :data:`TARGETS`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

OPERATORS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


class TargetsMissed(RuntimeError):
    """A finished course run missed one or more of its profile's targets."""


@dataclass(frozen=True)
class Target:
    """One course target: ``read(metrics) <op> bound`` in the listed profiles; ``lesson`` writes the number."""

    name: str
    lesson: str
    read: Callable[[Mapping], float]
    op: str
    bound: float
    profiles: tuple[str, ...] = ("tiny",)

    def __post_init__(self):
        if self.op not in OPERATORS:
            raise ValueError(f"target {self.name!r}: op must be one of {sorted(OPERATORS)}, got {self.op!r}")


def _forgetting_drop(metrics: Mapping) -> float:
    average = metrics["forgetting"]["average"]
    return average["base"] - average["full"]


TARGETS: tuple[Target, ...] = (
    Target("full fine-tuning gains ROUGE-1 over zero-shot", "03",
           lambda m: m["single_task"]["gain_over_zero_shot"]["full"], ">=", 0.25),
    Target("full fine-tuning lowers the average probe score (forgetting)", "04", _forgetting_drop, ">=", 0.3),
    Target("multi-task tuning keeps the probes (share of the base's average)", "05",
           lambda m: m["multitask"]["probe_retention"], ">=", 0.9),
    Target("multi-task ROUGE-1 behind single-task full by at most", "05",
           lambda m: m["multitask"]["target_gap_to_single_task_full"], "<=", 0.1),
)


def targets_for(profile_name: str, targets: tuple[Target, ...] = TARGETS) -> list[Target]:
    """The targets that apply to a profile (none for ``smoke`` and ``full``)."""
    return [t for t in targets if profile_name in t.profiles]


def check(metrics: Mapping, profile_name: str, targets: tuple[Target, ...] = TARGETS) -> list[dict]:
    """One row per target of the profile: its value, the bound and whether it is met.

    A number the metrics lack (its lesson did not run, or saved no such key) is a miss, with the lesson
    to run named in ``value``'s place.
    """
    rows = []
    for target in targets_for(profile_name, targets):
        try:
            value = float(target.read(metrics))
        except (KeyError, TypeError):
            rows.append({"target": target.name, "value": None, "bound": f"{target.op} {target.bound:g}",
                         "met": False, "note": f"missing from metrics.json: run lesson {target.lesson}"})
            continue
        met = OPERATORS[target.op](value, target.bound)
        rows.append({"target": target.name, "value": value, "bound": f"{target.op} {target.bound:g}",
                     "met": bool(met), "note": "" if met else f"missed (lesson {target.lesson})"})
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
    missed = [row for row in rows if not row["met"]]
    if missed:
        detail = "; ".join(f"{row['target']}: {row['note']}" + ("" if row["value"] is None else
                                                                f" ({row['value']:.3f}, needs {row['bound']})")
                           for row in missed)
        raise TargetsMissed(f"{len(missed)} of {len(rows)} course targets missed: {detail}")
