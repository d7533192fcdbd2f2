"""FLAN-style training mixtures (lesson 05): several tasks and templates, zero- and few-shot. Tasks mix by
size (each counted up to ``cap`` examples) and the target task gets a set share (:class:`MixtureSpec`).
Lesson 05 builds its mixtures in cells from these parts; :func:`build_mixture` is the same recipe as a
function (a test checks they agree)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasets import Dataset, Features, List, Value

from utils import data, forgetting, modeling, templates, training
from utils.config import Profile
from utils.data import PROBES, TARGET_TASK

ZERO_SHOT, FEW_SHOT = "zero_shot", "few_shot"
#: The columns of every mixture: what each example is, where it comes from, and the text the model sees.
COLUMNS = ("task", "template", "format", "n_shots", "row_id", "shot_ids", "source", "target")
FEATURES = Features({**{name: Value("string") for name in COLUMNS}, "n_shots": Value("int32"),
                     "shot_ids": List(Value("string"))})
SHOT_DELIMITERS = ("\n\n", "\n\n###\n\n", "\n\n---\n\n")  # varied, as FLAN's


class MixtureError(ValueError):
    """Invalid mixture settings."""


@dataclass(frozen=True)
class MixtureSpec:
    """What goes into a FLAN-style mixture."""

    tasks: tuple[str, ...] = (TARGET_TASK, *PROBES)
    cap: int | None = 3000  # a task counts with at most this many examples in the rates (None: no cap)
    few_shot_share: float = 0.2  # share of each task's examples given exemplars (at most max_shots that fit)
    max_shots: int = 2
    include_inverted: bool = False  # also train on inverted templates (e.g. a dialogue from its summary)
    target_share: float | None = 0.6  # the target task's share; None mixes it by its size like the others
    seed: int = 42

    def __post_init__(self) -> None:
        if not self.tasks:
            raise MixtureError("A mixture needs at least one task, e.g. tasks=('dialogsum', 'qa').")
        if self.cap is not None and self.cap < 1:
            raise MixtureError(f"cap={self.cap} must be a positive number of examples (or None for no cap).")
        if not 0 <= self.few_shot_share <= 1:
            raise MixtureError(f"few_shot_share={self.few_shot_share} must be a share in [0, 1], e.g. 0.2.")
        if self.max_shots < 1 and self.few_shot_share > 0:
            raise MixtureError("max_shots must be at least 1 when few_shot_share > 0 (or few_shot_share=0).")
        if self.target_share is not None and not 0 < self.target_share < 1:
            raise MixtureError(f"target_share={self.target_share} must be a share in (0, 1), e.g. 0.6 (or "
                               "None to mix the target task by its size).")

    def rates(self, sizes: Mapping[str, int]) -> dict[str, float]:
        """Each task's mixing rate, from the tasks' train sizes (see :func:`mixing_rates`)."""
        weighted = self.target_share is not None and TARGET_TASK in sizes and len(sizes) > 1
        return mixing_rates(sizes, self.cap, {TARGET_TASK: self.target_share} if weighted else None)


def mixing_rates(sizes: Mapping[str, int], cap: int | None = None,
                 fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """Examples-proportional rates, ``min(size, cap) / sum of min(size, cap)``; the tasks in ``fixed`` get
    their set rate instead, and the others share what is left."""
    if not sizes or min(sizes.values()) < 1:
        raise MixtureError(f"Every task needs at least one training example; got sizes {dict(sizes)}.")
    if cap is not None and cap < 1:
        raise MixtureError(f"cap={cap} must be a positive number of examples (or None for no cap).")
    fixed = dict(fixed or {})
    rest = 1.0 - sum(fixed.values())
    if (set(fixed) - set(sizes) or any(not 0 < rate <= 1 for rate in fixed.values()) or rest < 0
            or (rest > 0) != (len(fixed) < len(sizes))):
        raise MixtureError(f"Fixed rates {fixed} must be shares of tasks among {sorted(sizes)}, in (0, 1], "
                           "summing to at most 1 (exactly 1 when every task has one).")
    counted = {task: min(n, cap) if cap else n for task, n in sizes.items() if task not in fixed}
    total = sum(counted.values())
    return {task: fixed[task] if task in fixed else rest * counted[task] / total for task in sizes}


def allocate(n_examples: int, rates: Mapping[str, float]) -> dict[str, int]:
    """Split ``n_examples`` among tasks by rate, in whole numbers that sum to it (largest remainders up)."""
    if n_examples < 0:
        raise MixtureError(f"n_examples={n_examples} must not be negative.")
    exact = {task: n_examples * rate for task, rate in rates.items()}
    counts = {task: int(np.floor(x)) for task, x in exact.items()}
    by_remainder = sorted(rates, key=lambda task: exact[task] - counts[task], reverse=True)
    for task in by_remainder[: n_examples - sum(counts.values())]:
        counts[task] += 1
    return counts


def sample_rows(n_rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` row indices out of ``n_rows``: without repeats while possible, then whole extra passes."""
    passes = [rng.permutation(n_rows) for _ in range(math.ceil(n / n_rows))] if n else []
    return np.concatenate([np.zeros(0, dtype=int), *passes])[:n]


def render_examples(task: str, rows, indices: Sequence[int], spec: MixtureSpec,
                    count_tokens: Callable[[str], int], max_source_length: int, rng: np.random.Generator
                    ) -> list[dict]:
    """The rows ``indices`` of one task's train split, rendered with its training templates (spread evenly);
    ``spec.few_shot_share`` of them get exemplars from that split, as many as fit ``max_source_length``."""
    chosen = templates.training_templates(task, include_inverted=spec.include_inverted)
    assignment = templates.assign_templates(len(indices), len(chosen), seed=int(rng.integers(2**31)))
    n_few = round(spec.few_shot_share * len(indices)) if len(rows) > 1 else 0
    few = set(rng.permutation(len(indices))[:n_few].tolist())
    examples = []
    for position, index in enumerate(indices):
        template, row = chosen[assignment[position]], rows[int(index)]
        source, target = template.render(row)
        fmt, shot_ids = ZERO_SHOT, []
        if position in few:
            k = min(spec.max_shots, len(rows) - 1)  # shots: k other rows, drawn skipping the query's index
            shots = [int(i) + (i >= int(index)) for i in rng.choice(len(rows) - 1, size=k, replace=False)]
            delimiter = SHOT_DELIMITERS[int(rng.integers(len(SHOT_DELIMITERS)))]
            for n_shots in range(k, 0, -1):  # drop shots until the prompt fits the model
                shot_rows = [rows[i] for i in shots[:n_shots]]
                candidate, _ = templates.render_few_shot(template, shot_rows, row, delimiter=delimiter)
                if count_tokens(candidate) <= max_source_length:
                    source, fmt, shot_ids = candidate, FEW_SHOT, [r["id"] for r in shot_rows]
                    break
        examples.append({"task": task, "template": template.name, "format": fmt, "n_shots": len(shot_ids),
                         "row_id": row["id"], "shot_ids": shot_ids, "source": source, "target": target})
    return examples


def token_counter(profile: Profile) -> Callable[[str], int]:
    """A prompt's length in the profile's tokens."""
    tokenizer = modeling.load_tokenizer(profile)
    return lambda text: len(tokenizer(text, verbose=False)["input_ids"])


def task_train_split(task: str, profile: Profile):
    """The train split of the target task or of a probe task."""
    if task == TARGET_TASK:
        return data.load_target(profile)["train"]
    if task in data.probe_names():
        return data.load_probe(task, profile)["train"]
    raise MixtureError(f"Unknown task {task!r}; mixtures use {TARGET_TASK!r} and the probe tasks {PROBES}.")


def budget_examples(profile: Profile, steps: int | None = None) -> int:
    """Examples seen by a run of ``steps`` (default: the profile's budget): ``steps x batch_size``."""
    return (profile.train_steps if steps is None else steps) * profile.batch_size


def build_mixture(profile: Profile, spec: MixtureSpec | None = None, n_examples: int | None = None,
                  count_tokens: Callable[[str], int] | None = None, splits: Mapping | None = None) -> Dataset:
    """The FLAN-style multi-task mixture: ``n_examples`` prompt/target pairs (default: the budget's worth);
    ``splits`` (task -> rows) replaces the data on disk and ``count_tokens`` the tokenizer (for tests)."""
    spec = spec or MixtureSpec(seed=profile.seed)
    splits = splits or {task: task_train_split(task, profile) for task in spec.tasks}
    count_tokens = count_tokens or token_counter(profile)
    rates = spec.rates({task: len(splits[task]) for task in spec.tasks})
    counts = allocate(budget_examples(profile) if n_examples is None else n_examples, rates)
    rng, examples = np.random.default_rng(spec.seed), []
    for task in spec.tasks:
        rows = splits[task]
        indices = sample_rows(len(rows), counts[task], rng)
        examples += render_examples(task, rows, indices, spec, count_tokens, profile.max_source_length, rng)
    dataset = Dataset.from_dict({name: [e[name] for e in examples] for name in COLUMNS}, features=FEATURES)
    return dataset.shuffle(seed=spec.seed).flatten_indices()  # so tasks interleave


def first_example(mixture, fmt: str, task: str) -> dict | None:
    """The mixture's first example in format ``fmt`` of ``task``, else of any task, else None."""
    rows = mixture.filter(lambda row: row["format"] == fmt)
    return next((row for row in rows if row["task"] == task), rows[0] if len(rows) else None)


def composition(mixture) -> pd.DataFrame:
    """How a mixture is made: examples per task and format, each task's share, and its templates used."""
    frame = mixture.select_columns(["task", "format", "template"]).to_pandas()
    table = pd.crosstab(frame["task"], frame["format"]).reindex(columns=[ZERO_SHOT, FEW_SHOT], fill_value=0)
    table["total"] = table.sum(axis=1)
    table["share"] = table["total"] / table["total"].sum()
    table["templates"] = frame.groupby("task")["template"].nunique()
    table.columns.name = None
    return table.sort_values("total", ascending=False)


def multitask_section(board: pd.DataFrame, mixture, spec: MixtureSpec, replay_ratios: Sequence[float]
                      ) -> dict:
    """Lesson 05's ``multitask`` section of metrics.json (from its scoreboard, ``mixture`` and ``spec``)."""
    retention, gap = forgetting.retention_table(board).loc["multitask", ["probe_retention", "target_gap"]]
    scores = {model: {"target": forgetting.target_measures(board, model),
                      "probes": {probe: board.loc[model, probe] for probe in PROBES},
                      "probe_average": board.loc[model, "probe_average"]}
              for model in ["multitask", *(f"replay_{ratio:.0%}" for ratio in replay_ratios)]}
    multitask = scores["multitask"]  # its target measures gain the held-out template's score:
    multitask["target"]["held_out_template_rouge1"] = board.loc["multitask", "target_held_out"]
    return {
        **multitask, "target_gap_to_single_task_full": gap,
        **({"probe_retention": retention} if pd.notna(retention) else {}),
        "held_out_template": {"template": templates.held_out_template(TARGET_TASK).name,
                              **board["target_held_out"].to_dict()},
        "replay": {f"{ratio:.0%}".replace("%", "pct"): {"ratio": ratio, **scores[f"replay_{ratio:.0%}"]}
                   for ratio in replay_ratios},
        "mixture": {"n_examples": len(mixture), "target_share": spec.target_share, "cap": spec.cap,
                    "few_shot_share": spec.few_shot_share, "max_shots": spec.max_shots,
                    "share": composition(mixture)["share"].to_dict()},
        "summary": board.to_dict("index"),
    }


def run_name(method: str = "full") -> str:
    """The name of a multi-task run (lesson 05's trainer cell writes the same; a test checks it)."""
    return f"multitask_{method}"


def multitask_run(profile: Profile) -> training.TrainedRun:
    """Full fine-tuning on the mixture, with the single-task runs' base and budget (or the cached run)."""
    return training.train(run_name("full"), "full", build_mixture(profile), profile)
