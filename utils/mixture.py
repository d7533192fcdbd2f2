"""FLAN-style training mixtures: several tasks, several templates each, zero-shot and few-shot, mixed by size.

How FLAN builds its training data, in miniature:

* **many templates per task** -- each example is rendered with one of the task's training templates (the
  held-out template is never used, so it can test unseen phrasings later);
* **zero-shot and few-shot formats** -- a share of the examples get a few solved exemplars ("shots") in front,
  taken from the *same train split* and never the example itself;
* **examples-proportional mixing with a cap** -- a task is sampled in proportion to its size, but a task
  counts with at most ``cap`` examples, so a huge data set cannot drown the small ones;
* **a weight for what matters most** -- FLAN 2022 sets each collection's weight by hand; we set the share of the
  new (target) task, and the held-in tasks share the rest by size, so the mixture learns the new task at
  nearly single-task speed while it keeps rehearsing the old ones.

Lesson 05 builds its mixtures in cells, with this module's plumbing: :func:`mixing_rates` / :func:`allocate`
(rates and whole counts), :func:`sample_rows`, :func:`render_examples` (templates, few-shot exemplars within a
token budget, :func:`token_counter`) and the :data:`FEATURES` every part shares, joined with
``datasets.concatenate_datasets`` and shuffled. :func:`build_mixture` and :func:`replay_mixture` are the same
recipes as functions, for what runs outside a lesson (the tiny model's build, ``python -m utils.train``, the
playground's :func:`multitask_run`); a test checks that lesson 05's cells give the very same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasets import Dataset, Features, List, Value

from utils import data, finetuning, forgetting, modeling, templates, training
from utils.config import Profile
from utils.data import PROBES

_TARGET_TASK = data.TARGET_TASK
ZERO_SHOT, FEW_SHOT = "zero_shot", "few_shot"
#: The columns of every mixture: what each example is, where it comes from, and the text the model sees.
COLUMNS = ("task", "template", "format", "n_shots", "row_id", "shot_ids", "source", "target")
FEATURES = Features({**{name: Value("string") for name in COLUMNS}, "n_shots": Value("int32"),
                     "shot_ids": List(Value("string"))})
#: Few-shot exemplars are joined with varied delimiters, as FLAN does.
SHOT_DELIMITERS = ("\n\n", "\n\n###\n\n", "\n\n---\n\n")


class MixtureError(ValueError):
    """Invalid mixture settings."""


@dataclass(frozen=True)
class MixtureSpec:
    """What goes into a FLAN-style mixture.

    ``cap``: a task counts with at most this many examples when mixing rates are set (None: no cap).
    ``few_shot_share``: share of each task's examples rendered few-shot, with up to ``max_shots`` exemplars
    (fewer when the prompt would not fit ``max_source_length``; zero-shot when not even one fits).
    ``include_inverted``: also train on inverted templates (e.g. write a dialogue from its summary).
    ``target_share``: share of the examples given to the target task (the other tasks share the rest,
    examples-proportionally with the cap); None mixes the target by its size like every other task.
    """

    tasks: tuple[str, ...] = (_TARGET_TASK, *PROBES)
    cap: int | None = 3000
    few_shot_share: float = 0.2
    max_shots: int = 2
    include_inverted: bool = False
    target_share: float | None = 0.6
    seed: int = 42

    def __post_init__(self) -> None:
        if not self.tasks:
            raise MixtureError("A mixture needs at least one task, e.g. tasks=('dialogsum', 'qa').")
        if self.cap is not None and self.cap < 1:
            raise MixtureError(f"cap={self.cap} must be a positive number of examples (or None for no cap).")
        if not 0 <= self.few_shot_share <= 1:
            raise MixtureError(f"few_shot_share={self.few_shot_share} must be a share in [0, 1], e.g. 0.2.")
        if self.max_shots < 1 and self.few_shot_share > 0:
            raise MixtureError("max_shots must be at least 1 when few_shot_share > 0 (or set few_shot_share=0).")
        if self.target_share is not None and not 0 < self.target_share < 1:
            raise MixtureError(f"target_share={self.target_share} must be a share in (0, 1), e.g. 0.6 "
                               "(or None to mix the target task by its size).")

    def rates(self, sizes: Mapping[str, int]) -> dict[str, float]:
        """Each task's mixing rate, from the tasks' train sizes (see :func:`mixing_rates`)."""
        weighted = self.target_share is not None and _TARGET_TASK in sizes and len(sizes) > 1
        return mixing_rates(sizes, self.cap, {_TARGET_TASK: self.target_share} if weighted else None)


# --- mixing rates -------------------------------------------------------------------------------------
def mixing_rates(sizes: Mapping[str, int], cap: int | None = None,
                 fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """Examples-proportional mixing: each task's rate is ``min(size, cap) / sum of min(size, cap)``.

    ``fixed`` gives some tasks a set rate; the other tasks share what is left, examples-proportionally.
    """
    bad = {task: n for task, n in sizes.items() if n < 1}
    if not sizes or bad:
        raise MixtureError(f"Every task needs at least one training example; got sizes {dict(sizes)}.")
    if cap is not None and cap < 1:
        raise MixtureError(f"cap={cap} must be a positive number of examples (or None for no cap).")
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(sizes)
    rest = 1.0 - sum(fixed.values())
    if unknown or any(not 0 < rate <= 1 for rate in fixed.values()) or rest < 0 or (rest > 0) != (len(fixed) < len(sizes)):
        raise MixtureError(f"Fixed rates {fixed} must be shares of tasks among {sorted(sizes)}, in (0, 1], "
                           "summing to at most 1 (exactly 1 when every task has one).")
    counted = {task: min(n, cap) if cap else n for task, n in sizes.items() if task not in fixed}
    total = sum(counted.values())
    return {task: fixed[task] if task in fixed else rest * counted[task] / total for task in sizes}


def allocate(n_examples: int, rates: Mapping[str, float]) -> dict[str, int]:
    """Split ``n_examples`` among tasks by rate; counts are whole numbers that sum to ``n_examples`` exactly
    (largest remainders get the leftovers)."""
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
    if n == 0:
        return np.zeros(0, dtype=int)
    passes = [rng.permutation(n_rows) for _ in range(math.ceil(n / n_rows))]
    return np.concatenate(passes)[:n]


# --- rendering ----------------------------------------------------------------------------------------
def shot_indices(n_rows: int, query: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` distinct exemplar rows for the query row ``query``, never the query itself."""
    if k >= n_rows:
        raise MixtureError(f"Cannot pick {k} shots other than the query from {n_rows} rows; lower max_shots.")
    choices = rng.choice(n_rows - 1, size=k, replace=False)
    return [int(i) + (i >= query) for i in choices]  # skip over the query's index


def render_examples(task: str, rows, indices: Sequence[int], spec: MixtureSpec, count_tokens: Callable[[str], int],
                    max_source_length: int, rng: np.random.Generator) -> list[dict]:
    """Render the rows ``indices`` of one task's train split with its training templates.

    Templates are spread evenly over the examples; ``spec.few_shot_share`` of them get up to ``spec.max_shots``
    exemplars (same template, same split, never the row itself), as many as fit ``max_source_length``.
    """
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
            k = min(spec.max_shots, len(rows) - 1)
            shots = shot_indices(len(rows), int(index), k, rng)
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
    """A prompt's length in the profile's tokens: what a few-shot prompt must fit (``max_source_length``)."""
    tokenizer = modeling.load_tokenizer(profile)
    return lambda text: len(tokenizer(text, verbose=False)["input_ids"])


def task_train_split(task: str, profile: Profile):
    """The train split of the target task or of a probe task."""
    if task == _TARGET_TASK:
        return data.load_target(profile)["train"]
    if task in data.probe_names():
        return data.load_probe(task, profile)["train"]
    raise MixtureError(f"Unknown task {task!r}; mixtures use {_TARGET_TASK!r} and the probe tasks {PROBES}.")


def _as_dataset(examples: list[dict], seed: int) -> Dataset:
    """A mixture Dataset with the :data:`COLUMNS`, shuffled so tasks interleave."""
    columns = {name: [example[name] for example in examples] for name in COLUMNS}
    dataset = Dataset.from_dict(columns, features=FEATURES)
    return dataset.shuffle(seed=seed).flatten_indices()


# --- the mixtures -------------------------------------------------------------------------------------
def budget_examples(profile: Profile, steps: int | None = None) -> int:
    """Examples seen by a run of ``steps`` (default: the profile's step budget): ``steps x batch_size``."""
    return (profile.train_steps if steps is None else steps) * profile.batch_size


def build_mixture(profile: Profile, spec: MixtureSpec | None = None, n_examples: int | None = None,
                  count_tokens: Callable[[str], int] | None = None, splits: Mapping | None = None) -> Dataset:
    """The FLAN-style multi-task mixture: ``n_examples`` (default: the step budget's worth) prompt/target pairs.

    Rates come from :meth:`MixtureSpec.rates` on the tasks' train sizes; each task's examples are
    rendered by :func:`render_examples`. ``splits`` (task -> rows) replaces the data on disk (for tests), and
    ``count_tokens`` the profile's tokenizer.
    """
    spec = spec or MixtureSpec(seed=profile.seed)
    splits = splits or {task: task_train_split(task, profile) for task in spec.tasks}
    count_tokens = count_tokens or token_counter(profile)
    rates = spec.rates({task: len(splits[task]) for task in spec.tasks})
    counts = allocate(budget_examples(profile) if n_examples is None else n_examples, rates)
    rng = np.random.default_rng(spec.seed)
    examples = []
    for task in spec.tasks:
        indices = sample_rows(len(splits[task]), counts[task], rng)
        examples += render_examples(task, splits[task], indices, spec, count_tokens, profile.max_source_length, rng)
    return _as_dataset(examples, spec.seed)


def replay_mixture(ratio: float, profile: Profile, probes: Sequence[str] = PROBES,
                   splits: Mapping | None = None, seed: int | None = None) -> Dataset:
    """The single-task training data plus probe-task data making up a ``ratio`` share of the result.

    The summarization examples are exactly the single-task run's; ``ratio * n / (1 - ratio)`` probe examples
    (split evenly over ``probes``, zero-shot, training templates) are added, so probe data is ``ratio`` of all.
    """
    if not 0 <= ratio < 1:
        raise MixtureError(f"ratio={ratio} must be a share in [0, 1), e.g. 0.05 for 5% replayed probe data.")
    seed = profile.seed if seed is None else seed
    target = splits[_TARGET_TASK] if splits else finetuning.summarization_training_data(profile)
    target_examples = [{"task": _TARGET_TASK, "template": row["template"], "format": ZERO_SHOT, "n_shots": 0,
                        "row_id": row["id"], "shot_ids": [], "source": row["source"], "target": row["target"]}
                       for row in target]
    n_probe = round(ratio * len(target_examples) / (1 - ratio))
    counts = allocate(n_probe, {probe: 1 / len(probes) for probe in probes})
    rng = np.random.default_rng(seed)
    spec = MixtureSpec(tasks=tuple(probes), few_shot_share=0.0, seed=seed)
    examples = list(target_examples)
    for probe in probes:
        rows = splits[probe] if splits else task_train_split(probe, profile)
        indices = sample_rows(len(rows), counts[probe], rng)
        examples += render_examples(probe, rows, indices, spec, len, profile.max_source_length, rng)
    return _as_dataset(examples, seed)


def first_example(mixture, fmt: str, task: str) -> dict | None:
    """The mixture's first example in format ``fmt`` of ``task``, else of any task; None when it has none in
    ``fmt`` (a short budget may draw no few-shot example at all)."""
    rows = mixture.filter(lambda row: row["format"] == fmt)
    return next((row for row in rows if row["task"] == task), rows[0] if len(rows) else None)


def composition(mixture) -> pd.DataFrame:
    """How a mixture is made: examples per task and format, each task's share, and its templates used."""
    frame = mixture.select_columns(["task", "format", "template"]).to_pandas()
    table = frame.pivot_table(index="task", columns="format", values="template", aggfunc="count", fill_value=0)
    table = table.reindex(columns=[ZERO_SHOT, FEW_SHOT], fill_value=0)
    table["total"] = table.sum(axis=1)
    table["share"] = table["total"] / table["total"].sum()
    table["templates"] = frame.groupby("task")["template"].nunique()
    table.columns.name = None
    return table.sort_values("total", ascending=False)


def multitask_section(board: pd.DataFrame, mixture, spec: MixtureSpec, replay_ratios: Sequence[float]) -> dict:
    """Lesson 05's ``multitask`` section of metrics.json, from its :func:`utils.forgetting.scoreboard`: the
    multi-task model's target and probe scores, its probe retention and target gap (against single-task full
    fine-tuning), every model's score with the held-out template, the replay runs, the ``mixture``'s make-up
    (built from ``spec``) and the whole board."""
    retention, gap = forgetting.retention_table(board).loc["multitask", ["probe_retention", "target_gap"]]

    def scores(model: str) -> dict:
        return {"target": forgetting.target_measures(board, model),
                "probes": {probe: board.loc[model, probe] for probe in PROBES},
                "probe_average": board.loc[model, "probe_average"]}

    multitask = scores("multitask")
    return {
        "target": {**multitask["target"],  # rouge1, fact_recall, grounding
                   "held_out_template_rouge1": board.loc["multitask", "target_held_out"]},
        "probes": multitask["probes"],
        "probe_average": multitask["probe_average"],
        "target_gap_to_single_task_full": gap,
        **({"probe_retention": retention} if pd.notna(retention) else {}),
        "held_out_template": {"template": templates.held_out_template(_TARGET_TASK).name,
                              **board["target_held_out"].to_dict()},
        "replay": {f"{ratio:.0%}".replace("%", "pct"): {"ratio": ratio, **scores(f"replay_{ratio:.0%}")}
                   for ratio in replay_ratios},
        "mixture": {"n_examples": len(mixture), "target_share": spec.target_share, "cap": spec.cap,
                    "few_shot_share": spec.few_shot_share, "max_shots": spec.max_shots,
                    "share": composition(mixture)["share"].to_dict()},
        "summary": {model: row for model, row in board.to_dict("index").items()},
    }


# --- training runs ------------------------------------------------------------------------------------
def run_name(method: str = "full") -> str:
    """The name of a multi-task run (lesson 05 writes ``multitask_full`` in its trainer cell; a test checks they
    agree)."""
    return f"multitask_{method}"


def _replay_run_name(ratio: float) -> str:
    """The name of a replay run with ``ratio`` of replayed probe data (``replay_5pct_full``...)."""
    return f"replay_{ratio * 100:g}pct_full"


def multitask_run(profile: Profile, spec: MixtureSpec | None = None,
                  force: bool = False) -> training.TrainedRun:
    """Full fine-tuning on the FLAN-style mixture, from the same base and with the same step budget as
    the single-task runs; or the cached run. No validation along training: lesson 05 scores the finished
    model on every task, so validation summaries generated at each checkpoint would only cost time."""
    mixture = build_mixture(profile, spec)
    return training.train(run_name("full"), "full", mixture, profile, force=force)


def replay_run(ratio: float, profile: Profile, force: bool = False) -> training.TrainedRun:
    """Single-task full fine-tuning with ``ratio`` of replayed probe data (same base, same budget); or the
    cached run. No validation along training, to keep it cheap."""
    return training.train(_replay_run_name(ratio), "full", replay_mixture(ratio, profile), profile,
                          force=force)
