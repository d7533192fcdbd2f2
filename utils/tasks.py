"""The task registry: one :class:`Task` record per task (columns, input field, scoring, data, templates).

Everything that differs between the course's tasks is a field of its record here; every other module asks
the registry (``tasks.get(name)``) instead of keeping a table of its own. Adding a probe task is one
:func:`register` call (or one entry in :data:`TASKS`) plus its data: JSONL files in its ``data_dir`` (offline
profiles) or a Hub id with a row mapping (``full``), and a template file ``<templates_dir>/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from utils.config import DATA_DIR, TEMPLATES_DIR

#: The main score of each task type: what a probe's ``main`` is and what forgetting is measured on.
_MAIN_METRIC = {"qa": "f1", "classification": "accuracy", "generation": "rouge1", "summarization": "rouge1"}


class TaskError(KeyError):
    """A task name the registry does not know, or a record that cannot be registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Task:
    """What the course knows about one task. ``columns`` is its normalized schema (the same in every profile);
    ``long_field`` the long input text (pre-training text for the tiny model, and the field shortened when a
    prompt would not fit the model); ``answer`` the column holding the expected output."""

    name: str
    columns: tuple[str, ...]
    long_field: str
    answer: str
    task_type: str  # one of MAIN_METRIC
    description: str
    data_dir: Path  # the JSONL splits of the offline profiles
    probe: bool = True  # a held-in skill scored for forgetting (the target and the chats are not)
    hub_id: str | None = None  # the data set the ``full`` profile loads (None: the local files everywhere)
    hub_row: Callable[..., dict] | None = None  # (row, idx, split) -> a row in ``columns`` (a Hub row mapped)
    hub_group: str | None = None  # rows sharing this Hub column stay on one side when validation is carved
    templates_dir: Path = TEMPLATES_DIR  # holds the template file ``<name>.yaml``

    def __post_init__(self) -> None:
        if self.task_type not in _MAIN_METRIC:
            raise TaskError(f"Task {self.name!r}: unknown task_type {self.task_type!r}; use one of "
                            f"{', '.join(_MAIN_METRIC)}.")
        missing = [c for c in ("id", self.long_field, self.answer) if c not in self.columns]
        if missing:
            raise TaskError(f"Task {self.name!r}: columns {self.columns} lack {missing}; list every column of "
                            "its rows (an id, the long input field and the answer included).")
        if self.hub_id is not None and self.hub_row is None:
            raise TaskError(f"Task {self.name!r}: a hub_id needs its hub_row, the mapping of a Hub row to columns.")

    @property
    def main_metric(self) -> str:
        """The task's main score (``f1``, ``accuracy`` or ``rouge1``)."""
        return _MAIN_METRIC[self.task_type]

    @property
    def has_labels(self) -> bool:
        """Whether answers are labels from a fixed list (then the share of valid labels is reported too)."""
        return self.task_type == "classification"

    @property
    def template_file(self) -> Path:
        """The task's template file."""
        return Path(self.templates_dir) / f"{self.name}.yaml"

    def meta(self) -> dict:
        """What ``data/probes/<name>/meta.json`` records: task type, main metric and description."""
        return {"task_type": self.task_type, "main_metric": self.main_metric, "description": self.description}


# --- the Hub row mappings of the ``full`` profile -------------------------------------------------------
AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
SENTIMENT_LABELS = ["negative", "positive"]
TARGET_COLUMNS = ("id", "dialogue", "summary", "topic")


def _dialogsum_row(row: dict, idx: int = 0, split: str = "") -> dict:
    """knkarthick/dialogsum (already the target schema; extra columns dropped)."""
    return {c: str(row[c]) for c in TARGET_COLUMNS}


def _squad_row(row: dict, idx: int = 0, split: str = "") -> dict:
    """rajpurkar/squad -> qa: the first gold answer is the answer (SQuAD's own id is kept)."""
    return {"id": str(row["id"]), "context": row["context"], "question": row["question"],
            "answer": row["answers"]["text"][0]}


def _ag_news_row(row: dict, idx: int, split: str) -> dict:
    """fancyzhx/ag_news -> topic: the label number becomes its name; all names are the options."""
    return {"id": f"ag_news_{split}_{idx}", "text": row["text"], "label": AG_NEWS_LABELS[row["label"]],
            "options": AG_NEWS_LABELS}


def _amazon_sentiment_row(row: dict, idx: int, split: str) -> dict:
    """fancyzhx/amazon_polarity -> sentiment: the review's content and negative/positive."""
    return {"id": f"amazon_{split}_{idx}", "text": row["content"], "label": SENTIMENT_LABELS[row["label"]],
            "options": SENTIMENT_LABELS}


def _amazon_title_row(row: dict, idx: int, split: str) -> dict:
    """fancyzhx/amazon_polarity -> title: the review's content and its title."""
    return {"id": f"amazon_{split}_{idx}", "text": row["content"], "title": row["title"]}


# --- the registry ---------------------------------------------------------------------------------------
#: The target task: its source is the profile's ``target`` (a local folder, or DialogSum on the Hub).
TARGET_TASK = "dialogsum"
_PROBE_DIR = DATA_DIR / "probes"

TASKS: dict[str, Task] = {task.name: task for task in (
    Task(TARGET_TASK, TARGET_COLUMNS, "dialogue", "summary", "summarization",
         "Dialogue summarization (DialogSum schema): the held-out target task.", DATA_DIR / "dialogsum",
         probe=False, hub_row=_dialogsum_row),  # the Hub id is the full profile's ``target``
    Task("qa", ("id", "context", "question", "answer"), "context", "answer", "qa",
         "Extractive question answering over synthetic dialogues: the answer is a span of the context "
         "(who/when/where/what/how much about a slot of the dialogue).", _PROBE_DIR / "qa",
         hub_id="rajpurkar/squad", hub_row=_squad_row, hub_group="title"),
    Task("topic", ("id", "text", "label", "options"), "text", "label", "classification",
         "Which everyday scenario is this dialogue about? One of the listed options.", _PROBE_DIR / "topic",
         hub_id="fancyzhx/ag_news", hub_row=_ag_news_row),
    Task("sentiment", ("id", "text", "label", "options"), "text", "label", "classification",
         "Is this app review negative or positive? Some reviews are mixed; the final verdict decides.",
         _PROBE_DIR / "sentiment", hub_id="fancyzhx/amazon_polarity", hub_row=_amazon_sentiment_row),
    Task("title", ("id", "text", "title"), "text", "title", "generation",
         "Write a short title (2-5 words, like an app-store review title) for an app review.",
         _PROBE_DIR / "title", hub_id="fancyzhx/amazon_polarity", hub_row=_amazon_title_row),
    Task("chats", TARGET_COLUMNS, "dialogue", "summary", "summarization",
         "SAMSum-style chat summarization, held in: the tiny model is instruction-tuned on it.",
         DATA_DIR / "chats", probe=False),
)}


def get(name: str | Task) -> Task:
    """The registered task ``name`` (a :class:`Task` is returned as it is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise TaskError(f"Unknown task {name!r}. Registered tasks: {', '.join(TASKS)} "
                        "(add one with utils.tasks.register).")
    return TASKS[name]


def get_probe(name: str | Task) -> Task:
    """The registered *probe* task ``name``; the target and other non-probe tasks are refused."""
    task = get(name) if name in TASKS or isinstance(name, Task) else None
    if task is None or not task.probe:
        raise TaskError(f"Unknown probe task {name!r}. Probe tasks: {', '.join(probe_names())}.")
    return task


def register(task: Task, replace: bool = False) -> Task:
    """Add ``task`` to the registry (every module that asks the registry then knows it)."""
    if task.name in TASKS and not replace:
        raise TaskError(f"A task named {task.name!r} is already registered; choose another name "
                        "(or pass replace=True).")
    TASKS[task.name] = task
    return task


def probe_names() -> tuple[str, ...]:
    """The registered probe tasks, in registration order."""
    return tuple(name for name, task in TASKS.items() if task.probe)


#: The course's probe tasks (the registry's probes when the course starts).
PROBES = probe_names()
