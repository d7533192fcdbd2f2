"""A local stand-in of the Hugging Face cache holding everything the ``full`` profile loads, for tests offline.

With ``HF_HUB_OFFLINE=1``, the libraries resolve a Hub id from two caches, and this module writes both in their
real layouts, so that the course's unchanged loaders (``from_pretrained`` and ``load_dataset`` on Hub ids) run
against it:

- **models** (transformers / huggingface_hub): ``$HF_HUB_CACHE/models--google--flan-t5-base/refs/main`` holds a
  commit hash and ``snapshots/<hash>/`` the repository's files. Here: the course's tiny T5 (config, safetensors,
  tokenizer files, generation config) under FLAN-T5-base's name.
- **data sets** (datasets 5.x): offline, ``load_dataset("owner/name")`` cannot ask the Hub for the repository's
  files, so it reads what an earlier download prepared: ``$HF_DATASETS_CACHE/owner___name/<config>/<version>/
  <hash>/`` with ``dataset_info.json`` (features, splits) and one Arrow file per split, ``<name>-<split>.arrow``
  (see ``datasets.packaged_modules.cache``). These are written by the same Parquet builder a real download runs.

The rows come from the course's own synthetic data in ``data/``, turned back into each Hub set's schema: config
names, ``ClassLabel`` label columns (AG News, Amazon polarity), SQuAD's nested ``answers``, DialogSum's flattened
test rows (several reference rows per dialogue). Sizes are small so that a build takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from utils import data
from utils.config import DATA_DIR, PROFILES, TINY_MODEL_DIR

#: A made-up commit hash (the cache only needs 40 hex digits that refs/main names).
SHA = "0123456789abcdef0123456789abcdef01234567"
AG_NEWS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _rows(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n), strict=False)]


def _features():
    from datasets import ClassLabel, Features, List, Value

    text = Value("string")
    return {
        "knkarthick/dialogsum": ("default", Features({"id": text, "dialogue": text, "summary": text, "topic": text})),
        "rajpurkar/squad": ("plain_text", Features({
            "id": text, "title": text, "context": text, "question": text,
            "answers": {"text": List(text), "answer_start": List(Value("int32"))}})),
        "fancyzhx/ag_news": ("default", Features({"text": text, "label": ClassLabel(names=AG_NEWS_NAMES)})),
        "fancyzhx/amazon_polarity": ("amazon_polarity", Features({
            "label": ClassLabel(names=["negative", "positive"]), "title": text, "content": text})),
    }


def _dialogsum(split: str, n: int) -> list[dict]:
    return [{c: row[c] for c in ("id", "dialogue", "summary", "topic")} for row in _rows(DATA_DIR / "dialogsum" /
                                                                                           f"{split}.jsonl", n)]


def _squad(split: str, n: int) -> list[dict]:
    rows = _rows(DATA_DIR / "probes" / "qa" / f"{split}.jsonl", n)
    return [{"id": f"{5733 + i:024x}", "title": f"Article_{i // 4}", "context": r["context"], "question": r["question"],
             "answers": {"text": [r["answer"]], "answer_start": [max(0, r["context"].find(r["answer"]))]}}
            for i, r in enumerate(rows)]


def _ag_news(split: str, n: int) -> list[dict]:
    rows = _rows(DATA_DIR / "probes" / "topic" / f"{split}.jsonl", n)
    return [{"text": r["text"], "label": r["options"].index(r["label"]) % len(AG_NEWS_NAMES)} for r in rows]


def _amazon(split: str, n: int) -> list[dict]:
    rows = _rows(DATA_DIR / "probes" / "sentiment" / f"{split}.jsonl", n)
    return [{"label": r["options"].index(r["label"]), "title": " ".join(r["text"].split()[:4]), "content": r["text"]}
            for r in rows]


#: Hub id -> (row maker, {Hub split: source split in data/}); the Hub's own splits (SQuAD: train/validation).
SOURCES = {
    "knkarthick/dialogsum": (_dialogsum, {"train": "train", "validation": "validation", "test": "test"}),
    "rajpurkar/squad": (_squad, {"train": "train", "validation": "test"}),
    "fancyzhx/ag_news": (_ag_news, {"train": "train", "test": "test"}),
    "fancyzhx/amazon_polarity": (_amazon, {"train": "train", "test": "test"}),
}


def write_model(hub_cache: Path, repo_id: str, files=MODEL_FILES, untrained: bool = False) -> Path:
    """The tiny model's ``files`` as the Hub cache's snapshot of ``repo_id``; returns the snapshot folder.

    ``untrained``: the same config and tokenizer with random weights (seeded), a model that learned nothing and
    scores (about) 0 on every probe, as a weak model a user picks with ``COURSE_MODEL`` can."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / SHA
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(SHA)
    for name in files:
        shutil.copyfile(TINY_MODEL_DIR / name, snapshot / name)
    if untrained:
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        torch.manual_seed(0)
        model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(TINY_MODEL_DIR))
        model.save_pretrained(hub_cache / "untrained")
        shutil.move(hub_cache / "untrained" / "model.safetensors", snapshot / "model.safetensors")
        shutil.rmtree(hub_cache / "untrained")
    return snapshot


def write_dataset(datasets_cache: Path, repo_id: str, rows_per_split: dict[str, int], work: Path) -> Path:
    """Prepare ``repo_id``'s stand-in with the Parquet builder, in the layout ``load_dataset`` reads offline."""
    from datasets import Dataset
    from datasets.packaged_modules.parquet.parquet import Parquet

    config_name, features = _features()[repo_id]
    make, splits = SOURCES[repo_id]
    name = repo_id.split("/")[1]
    files = {}
    for hub_split, source in splits.items():
        files[hub_split] = str(work / f"{name}-{hub_split}.parquet")
        Dataset.from_list(make(source, rows_per_split.get(hub_split, rows_per_split["train"])),
                          features=features).to_parquet(files[hub_split])
    builder = Parquet(dataset_name=name, cache_dir=str(work / "build"), data_files=files, config_name=config_name,
                      hash=SHA, features=features)
    builder.download_and_prepare()
    owner = repo_id.split("/")[0]
    dest = datasets_cache / f"{owner}___{name}" / config_name / "0.0.0" / SHA
    shutil.copytree(builder.cache_dir, dest)
    return dest


def build(root: Path, rows: dict[str, int] | None = None, tokenizer: bool = True,
          untrained: bool = False) -> dict[str, str]:
    """Write a stand-in HF cache under ``root`` for every model and data set of the ``full`` profile.

    Returns the environment variables that point the libraries at it, offline. ``tokenizer=False`` leaves the
    tokenizer files out (the incomplete cache that made transformers build an empty tokenizer); ``untrained``
    gives the model random weights (:func:`write_model`).
    """
    rows = rows or {"train": 240, "validation": 40, "test": 60}
    full = PROFILES["full"]
    hub_cache, datasets_cache, work = root / "hub", root / "datasets", root / "work"
    work.mkdir(parents=True, exist_ok=True)
    files = MODEL_FILES if tokenizer else tuple(f for f in MODEL_FILES if f not in TOKENIZER_FILES)
    write_model(hub_cache, full.model, files, untrained)
    for repo_id in dict.fromkeys([full.target, *(data.get(p).hub_id for p in data.PROBES)]):
        write_dataset(datasets_cache, repo_id, rows, work)
    shutil.rmtree(work)
    return {"HF_HOME": str(root), "HF_HUB_CACHE": str(hub_cache), "HF_DATASETS_CACHE": str(datasets_cache),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
