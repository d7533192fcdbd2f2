"""Every task's data in any profile: the task registry, the loaders, test splits cut to the profile.

Offline profiles read the JSONL files in ``data/``, checked first (an error names the file and the line);
``full`` maps the Hub data sets to the same schemas (each :class:`Task`'s ``columns``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict, Features, List, Value

from utils import config
from utils.config import DATA_DIR, TEMPLATES_DIR, Profile

SPLITS = ("train", "validation", "test")
#: Carried where present, never required: ``facts``, the phrases a correct summary contains (the synthetic
#: corpus records them, see data/README.md; DialogSum on the Hub has none).
OPTIONAL_TARGET_COLUMNS = ("facts",)
_REGENERATE = "Regenerate the course data with `make data` (or `python -m utils.world.synth`)."
#: Columns whose value is a list of strings; every other column of a row must be a string.
_LIST_COLUMNS = ("options",)

#: Full profile: how many rows of a large Hub set are kept per split.
_FULL_CAPS = {"train": 30_000, "validation": 1_000, "test": 20_000}
#: Hub sets far larger than the caps (Amazon polarity: 3.6M rows) are streamed: only the first rows of each
#: split are read (train: enough to carve validation and sample the cap from).
STREAMED = {"fancyzhx/amazon_polarity": {"train": 2 * (_FULL_CAPS["train"] + _FULL_CAPS["validation"]),
                                         "test": _FULL_CAPS["test"]}}


class DataError(ValueError):
    """A data file or data set is missing or broken; the message says what to do."""


def read_jsonl(path: str | Path, columns: tuple[str, ...] = (), advice: str = _REGENERATE) -> list[dict]:
    """The rows of a JSONL file, each an object whose ``columns`` hold text (a null or a number would reach
    the prompts as "None" or "3"); errors name the file and line and end with ``advice``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file {path} not found. {advice}")
    rows = []
    for number, line in enumerate(read_utf8(path, advice).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg}). {advice}") from None
        except (ValueError, RecursionError) as e:  # a number of thousands of digits; lists nested too deep
            what = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
            raise DataError(f"{where}: a value Python will not read ({what}). {advice}") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}. {advice}")
        missing = [c for c in columns if c not in row]
        if missing:
            raise DataError(f"{where}: missing column(s) {', '.join(missing)} "
                            f"(expected {', '.join(columns)}). {advice}")
        for column in columns:
            value, listed = row[column], column in _LIST_COLUMNS
            items = value if listed and isinstance(value, list) else [value]
            if isinstance(value, list) == listed and all(isinstance(item, str) for item in items):
                continue
            shown = json.dumps(value, ensure_ascii=False)
            shown = shown if len(shown) <= 60 else shown[:60] + "..."
            found = "null" if value is None else f"{type(value).__name__} {shown}"
            expected = ('a list of texts, e.g. ["yes", "no"]' if listed
                        else 'text (a string in quotes, e.g. "...")')
            raise DataError(f"{where}: column {column!r} holds {found}; it must be {expected}. {advice}")
        rows.append(row)
    if not rows:
        raise DataError(f"Data file {path} is empty. {advice}")
    return rows


def read_utf8(path: str | Path, advice: str = _REGENERATE) -> str:
    """The text of ``path``, or a :class:`DataError` naming the line that is not UTF-8."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {raw[e.start]:#04x}); save the file as "
                        f"UTF-8. {advice}") from None


def load_local(folder: str | Path, columns: tuple[str, ...]) -> DatasetDict:
    """Check ``folder/{train,validation,test}.jsonl`` (once per content), then load them with ``datasets``."""
    files = {split: str(Path(folder) / f"{split}.jsonl") for split in SPLITS}
    for path in files.values():
        content = hashlib.blake2b(Path(path).read_bytes()).digest() if Path(path).is_file() else None
        _check_file(path, columns, content)
    return datasets.load_dataset("json", data_files=files)


@functools.lru_cache(maxsize=256)
def _check_file(path: str, columns: tuple[str, ...], content: bytes | None) -> None:
    """:func:`read_jsonl`'s checks, remembered for a file ``content`` (its hash) that passed them."""
    read_jsonl(path, columns)


def _hub_error(hub_id: str, error: Exception, online: bool, verb: str) -> Exception:
    """Offline: :func:`utils.config.unavailable`; online: most likely a wrong data set id."""
    if not online or datasets.config.HF_HUB_OFFLINE:
        return config.unavailable(hub_id, error)
    return DataError(f"Could not {verb} {hub_id!r} from the Hub ({error}). Check the data set id in the "
                     "profile, or switch to COURSE_PROFILE=tiny.")


def load_hub(hub_id: str) -> DatasetDict:
    """``datasets.load_dataset(hub_id)``; without a connection, from the HF cache or a quick, clear error."""
    online = config.use_hub(hub_id, datasets.config.HF_HUB_OFFLINE)
    try:
        return datasets.load_dataset(hub_id)
    except (OSError, datasets.exceptions.DatasetNotFoundError) as e:
        raise _hub_error(hub_id, e, online, "load") from e


def _load_hub_head(hub_id: str, sizes: dict[str, int]) -> DatasetDict:
    """The first ``sizes[split]`` rows of each split of a large Hub set, streamed (never the whole download)
    and kept in the HF data sets cache for offline use, with the Hub's features (``ClassLabel`` included)."""
    out, heads = {}, Path(datasets.config.HF_DATASETS_CACHE) / "course_heads" / hub_id.replace("/", "--")
    for split, n in sizes.items():
        folder = heads / f"{split}-{n}"
        if (folder / "dataset_info.json").is_file():
            out[split] = datasets.load_from_disk(str(folder))
            continue
        online = config.use_hub(hub_id, datasets.config.HF_HUB_OFFLINE)
        try:
            stream = datasets.load_dataset(hub_id, split=split, streaming=True)
            rows = list(stream.take(n))
        except (OSError, datasets.exceptions.DatasetNotFoundError, ValueError) as e:
            raise _hub_error(hub_id, e, online, "stream") from e
        out[split] = Dataset.from_list(rows, features=stream.features)
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted save
        out[split].save_to_disk(str(staging))  # then renamed: an interrupted save is never read as a head
        if not folder.exists():
            staging.replace(folder)
    return DatasetDict(out)


def _split_off_validation(train: Dataset, n: int, seed: int, group: str | None) -> tuple[Dataset, Dataset]:
    """Carve a validation set of about ``n`` rows from ``train``: a seeded random sample, or with ``group``
    (e.g. SQuAD's ``title``) whole groups from the end, so that no context is shared between the two parts."""
    n = max(1, min(n, len(train) // 2))
    if group is None:
        parts = train.train_test_split(test_size=n, seed=seed)
        return parts["train"], parts["test"]
    keys = train[group]
    start = len(keys)
    while start > 0 and (len(keys) - start < n or keys[start - 1] == keys[start]):
        start -= 1
    return train.select(range(start)), train.select(range(start, len(keys)))


def normalize_target(raw: DatasetDict) -> DatasetDict:
    """Map a Hub DialogSum ``DatasetDict`` to the target schema."""
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise DataError(f"The target data set lacks split(s) {', '.join(missing)} of {', '.join(SPLITS)}.")
    return DatasetDict({s: raw[s].map(get(TARGET_TASK).hub_row, remove_columns=raw[s].column_names)
                        .select_columns(list(TARGET_COLUMNS)) for s in SPLITS})


def normalize_probe(name: str, hub_id: str, raw: DatasetDict, seed: int = 42) -> DatasetDict:
    """Map a Hub probe data set to the probe's schema and splits, large splits capped at :data:`_FULL_CAPS`;
    validation is carved from train (SQuAD's own validation split serves as its test split, as usual)."""
    task = _probe_task(name)
    if hub_id != task.hub_id:
        known = ", ".join(f"{t.name}={t.hub_id}" for t in map(get, probe_names()) if t.hub_id)
        raise DataError(f"No mapping for probe {name!r} from {hub_id!r}. Supported: {known}.")
    train, validation = _split_off_validation(raw["train"], _FULL_CAPS["validation"], seed, task.hub_group)
    test = raw["test"] if "test" in raw else raw["validation"]
    # Plain strings, so that a Hub ``ClassLabel`` column of the same name (AG News' ``label``) can never
    # encode a label name back into its number.
    features = Features({c: List(Value("string")) if c == "options" else Value("string")
                         for c in task.columns})
    out = {}
    for split, ds in {"train": train, "validation": validation, "test": test}.items():
        if len(ds) > _FULL_CAPS[split]:
            ds = ds.shuffle(seed=seed).select(range(_FULL_CAPS[split]))
        ds = ds.map(task.hub_row, with_indices=True, fn_kwargs={"split": split},
                    remove_columns=ds.column_names, features=features)
        out[split] = ds.select_columns(list(task.columns))
    return DatasetDict(out)


def load_target(profile: Profile) -> DatasetDict:
    """The target task (dialogue summarization) as train/validation/test in the DialogSum schema, train cut
    to ``profile.n_train``; test has several reference rows per dialogue (:func:`group_references`)."""
    if profile.offline or config.is_local(profile.target):
        ds = load_local(profile.target, TARGET_COLUMNS)
    else:
        ds = normalize_target(load_hub(profile.target))
    ds["train"] = _first(ds["train"], profile.n_train)
    return ds


def _first(ds: Dataset, n: int | None) -> Dataset:  # n None: all rows
    return ds.select(range(min(n, len(ds)))) if n else ds


def _probe_task(name: str) -> Task:
    """The registry's record of probe task ``name`` (a :class:`DataError` naming the probes if none)."""
    try:
        return get_probe(name)
    except TaskError as error:
        raise DataError(str(error)) from None


def probe_source(name: str, profile: Profile) -> str:
    """Where a probe's data comes from: the profile's override, else the task's local folder (offline
    profiles, or a task with no Hub data set) or its Hub id."""
    task = _probe_task(name)
    if name in profile.probes:
        return profile.probes[name]
    return str(task.data_dir) if profile.offline or task.hub_id is None else task.hub_id


def load_probe(name: str, profile: Profile) -> DatasetDict:
    """A registered probe task (``qa``, ``topic``, ``sentiment``, ``title``...) as train/validation/test."""
    source = probe_source(name, profile)
    if profile.offline or config.is_local(source):
        return load_local(source, _probe_task(name).columns)
    # The loaders are in the cache key (a test may replace them); a copy, as callers may edit it.
    return DatasetDict(_hub_probe(name, source, profile.seed, load_hub, _load_hub_head))


@functools.lru_cache(maxsize=8)
def _hub_probe(name: str, source: str, seed: int, load: Callable, load_head: Callable) -> DatasetDict:
    """A Hub probe, loaded and normalized once per process (every ``probe_test`` reuses it)."""
    raw = load_head(source, STREAMED[source]) if source in STREAMED else load(source)
    return normalize_probe(name, source, raw, seed)


def target_test(profile: Profile):
    """The target test split, one row per dialogue with its list of ``references``, cut to the profile."""
    return _first(group_references(load_target(profile)["test"]), profile.n_eval_dialogues)


def probe_test(probe: str, profile: Profile):
    """A probe task's test split, cut to the profile's ``n_probe_eval``."""
    return _first(load_probe(probe, profile)["test"], profile.n_probe_eval)


def group_references(test: Dataset) -> Dataset:
    """One row per dialogue, in order: consecutive rows sharing a dialogue become a list of ``references``;
    the other columns (``id`` shortened by :func:`group_id`) are the group's first row's."""
    optional = [c for c in OPTIONAL_TARGET_COLUMNS if c in test.column_names]
    groups = [list(rows) for _, rows in itertools.groupby(test, key=lambda row: row["dialogue"])]
    return Dataset.from_dict({
        "id": [group_id([row["id"] for row in g]) for g in groups],
        "dialogue": [g[0]["dialogue"] for g in groups],
        "topic": [g[0]["topic"] for g in groups],
        "references": [[row["summary"] for row in g] for g in groups],
        **{c: [g[0][c] for g in groups] for c in optional},
    })


def group_id(ids: list[str]) -> str:
    """The shared id of a group of reference rows: ``["t_0_1", "t_0_2"]`` -> ``"t_0"``."""
    match = re.fullmatch(r"(.+)_\d+", ids[0])
    if len(ids) > 1 and match and all(re.fullmatch(rf"{re.escape(match[1])}_\d+", i) for i in ids):
        return match[1]
    return ids[0]


#: The main score of each task type: what a probe's ``main`` is and what forgetting is measured on.
_MAIN_METRIC = {"qa": "f1", "classification": "accuracy", "generation": "rouge1", "summarization": "rouge1"}


class TaskError(KeyError):
    """A task name the registry does not know, or a record that cannot be registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Task:
    """What the course knows about one task. ``columns``: its schema (the same in every profile);
    ``long_field``: the long input (shortened when a prompt would not fit); ``answer``: the output."""

    name: str
    columns: tuple[str, ...]
    long_field: str
    answer: str
    task_type: str  # one of _MAIN_METRIC
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
            raise TaskError(f"Task {self.name!r}: columns {self.columns} lack {missing}; list every column "
                            "of its rows (an id, the long input field and the answer included).")
        if self.hub_id is not None and self.hub_row is None:
            raise TaskError(f"Task {self.name!r}: a hub_id needs a hub_row (mapping a Hub row to columns).")

    main_metric = property(lambda self: _MAIN_METRIC[self.task_type])  # f1, accuracy or rouge1
    has_labels = property(lambda self: self.task_type == "classification")  # answers from a fixed list
    template_file = property(lambda self: Path(self.templates_dir) / f"{self.name}.yaml")

    def meta(self) -> dict:
        """What ``data/probes/<name>/meta.json`` records."""
        return {"task_type": self.task_type, "main_metric": self.main_metric, "description": self.description}


# The Hub row mappings of the ``full`` profile.
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


def _labelled_row(row: dict, idx: int, split: str, source: str, text: str, labels: list[str]) -> dict:
    """ag_news -> topic, amazon_polarity -> sentiment: the label number becomes its name, all the options."""
    return {"id": f"{source}_{split}_{idx}", "text": row[text], "label": labels[row["label"]],
            "options": labels}


def _amazon_title_row(row: dict, idx: int, split: str) -> dict:
    """fancyzhx/amazon_polarity -> title: the review's content and its title."""
    return {"id": f"amazon_{split}_{idx}", "text": row["content"], "title": row["title"]}


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
         hub_id="fancyzhx/ag_news",
         hub_row=functools.partial(_labelled_row, source="ag_news", text="text", labels=AG_NEWS_LABELS)),
    Task("sentiment", ("id", "text", "label", "options"), "text", "label", "classification",
         "Is this app review negative or positive? Some reviews are mixed; the final verdict decides.",
         _PROBE_DIR / "sentiment", hub_id="fancyzhx/amazon_polarity",
         hub_row=functools.partial(_labelled_row, source="amazon", text="content", labels=SENTIMENT_LABELS)),
    Task("title", ("id", "text", "title"), "text", "title", "generation",
         "Write a short title (2-5 words, like an app-store review title) for an app review.",
         _PROBE_DIR / "title", hub_id="fancyzhx/amazon_polarity", hub_row=_amazon_title_row),
    Task("chats", TARGET_COLUMNS, "dialogue", "summary", "summarization",
         "SAMSum-style chat summarization, held in: the tiny model is instruction-tuned on it.",
         DATA_DIR / "chats", probe=False),
)}


def get(name: str | Task) -> Task:
    """The registered task ``name`` (a :class:`Task` is returned as it is)."""
    if not isinstance(name, Task) and name not in TASKS:
        raise TaskError(f"Unknown task {name!r}. Registered tasks: {', '.join(TASKS)} "
                        "(add one with utils.data.register).")
    return name if isinstance(name, Task) else TASKS[name]


def get_probe(name: str | Task) -> Task:
    """The registered *probe* task ``name``; the target and other non-probe tasks are refused."""
    task = name if isinstance(name, Task) else TASKS.get(name)
    if task is None or not task.probe:
        raise TaskError(f"Unknown probe task {name!r}. Probe tasks: {', '.join(probe_names())}.")
    return task


def register(task: Task) -> Task:
    """Add ``task`` to the registry (every module that asks the registry then knows it)."""
    if task.name in TASKS:
        raise TaskError(f"A task named {task.name!r} is already registered; choose another name.")
    TASKS[task.name] = task
    return task


def probe_names() -> tuple[str, ...]:
    """The registered probe tasks, in registration order."""
    return tuple(name for name, task in TASKS.items() if task.probe)


#: The course's probe tasks (the registry's probes when the course starts).
PROBES = probe_names()
