"""Data files and loaders: schemas, splits, size, clear errors, reference grouping, Hub mappings."""

import dataclasses
import json
import time
from pathlib import Path

import datasets
import pytest
from datasets import Dataset, DatasetDict

from utils import data
from utils.config import DATA_DIR, get_profile
from utils.data import PROBES

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
TARGET_DIR = DATA_DIR / "dialogsum"
PROBE_DIR = DATA_DIR / "probes"
MAX_BYTES = 15_000_000


def rows(path: Path) -> list[dict]:
    return data.read_jsonl(path)


def texts(probe: str, split: str) -> set[str]:
    key = "context" if probe == "qa" else "text"
    return {r[key] for r in rows(PROBE_DIR / probe / f"{split}.jsonl")}


def dialogues(split: str) -> set[str]:
    return {r["dialogue"] for r in rows(TARGET_DIR / f"{split}.jsonl")}


def hub_fixture(hub_id: str) -> DatasetDict:
    """A fixture folder loaded as the Hub set would be: one split per JSONL file."""
    folder = FIXTURES / hub_id.replace("/", "__")
    files = {p.stem: str(p) for p in sorted(folder.glob("*.jsonl"))}
    return datasets.load_dataset("json", data_files=files)


# --- committed files -----------------------------------------------------------------------------


def test_committed_data_is_within_the_size_limit():
    files = [p for p in DATA_DIR.rglob("*") if p.is_file() and "models" not in p.parts]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


def test_target_files_have_the_dialogsum_schema():
    for split in data.SPLITS:
        for row in data.read_jsonl(TARGET_DIR / f"{split}.jsonl", data.TARGET_COLUMNS):
            assert list(row) == list(data.TARGET_COLUMNS) + list(data.OPTIONAL_TARGET_COLUMNS)
            assert all(isinstance(row[c], str) and row[c] for c in data.TARGET_COLUMNS)
            assert row["facts"] and all(isinstance(f, str) and f for f in row["facts"])
            assert row["dialogue"].startswith("#Person1#: ") and "\n#Person2#: " in row["dialogue"]


@pytest.mark.parametrize("probe", PROBES)
def test_probe_files_have_their_schema(probe):
    meta = json.loads((PROBE_DIR / probe / "meta.json").read_text())
    assert {"task_type", "main_metric", "description"} <= set(meta)
    for split in data.SPLITS:
        for row in data.read_jsonl(PROBE_DIR / probe / f"{split}.jsonl", data.get(probe).columns):
            assert list(row) == list(data.get(probe).columns)
            if probe == "qa":
                assert row["answer"] and row["answer"] in row["context"]
            if "options" in row:
                assert row["label"] in row["options"]


def test_no_dialogue_is_in_two_target_splits():
    train, validation, test = (dialogues(s) for s in data.SPLITS)
    assert len(train) == len(rows(TARGET_DIR / "train.jsonl"))
    assert not train & validation and not train & test and not validation & test


@pytest.mark.parametrize("probe", PROBES)
def test_probe_splits_are_disjoint_and_apart_from_the_target_task(probe):
    train, validation, test = (texts(probe, s) for s in data.SPLITS)
    assert not train & validation and not train & test and not validation & test
    target = set().union(*(dialogues(s) for s in data.SPLITS))
    assert not (train | validation | test) & target


def test_test_split_has_three_consecutive_references_per_dialogue():
    test = rows(TARGET_DIR / "test.jsonl")
    assert len(test) % 3 == 0
    for i in range(0, len(test), 3):
        group = test[i:i + 3]
        assert [r["id"] for r in group] == [f"test_{i // 3}_{k}" for k in (1, 2, 3)]
        assert len({r["dialogue"] for r in group}) == 1


# --- read_jsonl: clear errors ----------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_says_how_to_regenerate(tmp_path):
    with pytest.raises(data.DataError, match=r"not found.*make data"):
        data.read_jsonl(tmp_path / "train.jsonl")


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(data.DataError, match=r"train\.jsonl is empty.*make data"):
        data.read_jsonl(write(tmp_path / "train.jsonl", "\n"))


def test_malformed_line_names_file_and_line(tmp_path):
    good = json.dumps({"id": "a", "text": "x"})
    path = write(tmp_path / "test.jsonl", f"{good}\n{good}\n{{not json\n")
    with pytest.raises(data.DataError, match=r"test\.jsonl, line 3: not valid JSON.*make data"):
        data.read_jsonl(path)
    with pytest.raises(data.DataError, match=r"line 1: expected a JSON object"):
        data.read_jsonl(write(tmp_path / "list.jsonl", "[1, 2]\n"))


def test_missing_columns_are_named_with_the_file(tmp_path):
    path = write(tmp_path / "validation.jsonl", json.dumps({"id": "a", "dialogue": "d"}) + "\n")
    with pytest.raises(data.DataError, match=r"validation\.jsonl, line 1: missing column\(s\) summary, topic"):
        data.read_jsonl(path, data.TARGET_COLUMNS)


def test_loader_checks_files_before_loading(tmp_path):
    folder = tmp_path / "dialogsum"
    folder.mkdir()
    for split in data.SPLITS:
        (folder / f"{split}.jsonl").write_bytes((TARGET_DIR / f"{split}.jsonl").read_bytes())
    with open(folder / "validation.jsonl", "a") as f:
        f.write('{"id": "broken",\n')
    profile = dataclasses.replace(get_profile("tiny"), target=str(folder))
    with pytest.raises(data.DataError, match=r"validation\.jsonl, line 251"):
        data.load_target(profile)


# --- loaders in the offline profiles ---------------------------------------------------------------


def test_load_target_gives_the_splits_and_respects_n_train():
    ds = data.load_target(get_profile("tiny"))
    assert isinstance(ds, DatasetDict) and set(ds) == set(data.SPLITS)
    assert ds["train"].column_names == list(data.TARGET_COLUMNS) + list(data.OPTIONAL_TARGET_COLUMNS)
    assert len(ds["test"]) == 3 * len(data.group_references(ds["test"]))
    smoke = get_profile("smoke")
    assert len(data.load_target(smoke)["train"]) == smoke.n_train


@pytest.mark.parametrize("probe", PROBES)
def test_load_probe_gives_normalized_splits(probe):
    ds = data.load_probe(probe, get_profile("tiny"))
    assert set(ds) == set(data.SPLITS)
    assert ds["test"].column_names == list(data.get(probe).columns)


def test_unknown_probe_is_a_clear_error():
    with pytest.raises(data.DataError, match="Probe tasks: qa, topic, sentiment, title"):
        data.load_probe("rating", get_profile("tiny"))


# --- group_references ------------------------------------------------------------------------------


def test_group_references_makes_one_row_per_dialogue_in_order():
    flat = Dataset.from_list([
        {"id": "test_0_1", "dialogue": "d0", "summary": "a", "topic": "t0"},
        {"id": "test_0_2", "dialogue": "d0", "summary": "b", "topic": "t0b"},
        {"id": "test_0_3", "dialogue": "d0", "summary": "c", "topic": "t0"},
        {"id": "test_1_1", "dialogue": "d1", "summary": "e", "topic": "t1"},
        {"id": "val_7", "dialogue": "d2", "summary": "f", "topic": "t2"},
    ])
    grouped = data.group_references(flat)
    assert grouped.column_names == ["id", "dialogue", "topic", "references"]
    assert grouped["id"] == ["test_0", "test_1_1", "val_7"]
    assert grouped["references"] == [["a", "b", "c"], ["e"], ["f"]]
    assert grouped["topic"] == ["t0", "t1", "t2"]


def test_group_id_only_strips_a_shared_suffix():
    assert data.group_id(["test_3_1", "test_3_2", "test_3_3"]) == "test_3"
    assert data.group_id(["train_0"]) == "train_0"
    assert data.group_id(["a_1", "b_2"]) == "a_1"


# --- full profile: Hub schemas mapped on local fixture rows ----------------------------------------


def test_dialogsum_hub_rows_map_to_the_target_schema():
    ds = data.normalize_target(hub_fixture("knkarthick/dialogsum"))
    assert ds["train"].column_names == list(data.TARGET_COLUMNS)
    grouped = data.group_references(ds["test"])
    assert grouped["id"] == ["test_0", "test_1"] and all(len(r) == 3 for r in grouped["references"])


def test_squad_maps_to_qa_with_validation_as_test_and_a_validation_carved_by_article():
    hub = hub_fixture("rajpurkar/squad")
    ds = data.normalize_probe("qa", "rajpurkar/squad", hub)
    assert ds["test"]["id"] == hub["validation"]["id"]
    assert ds["test"].column_names == list(data.get("qa").columns)
    assert ds["test"][0]["answer"] == "the Aven River"
    assert all(r["answer"] in r["context"] for s in data.SPLITS for r in ds[s])
    assert len(ds["train"]) + len(ds["validation"]) == len(hub["train"])
    assert len(ds["validation"]) >= 1 and not set(ds["train"]["context"]) & set(ds["validation"]["context"])


def test_ag_news_labels_become_names_with_options():
    ds = data.normalize_probe("topic", "fancyzhx/ag_news", hub_fixture("fancyzhx/ag_news"))
    assert ds["test"]["label"] == ["Business", "Sci/Tech"]
    assert ds["test"][0]["options"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert len(ds["train"]) + len(ds["validation"]) == 6
    all_ids = [i for s in data.SPLITS for i in ds[s]["id"]]
    assert len(all_ids) == len(set(all_ids))


def test_amazon_polarity_serves_sentiment_and_title():
    hub = hub_fixture("fancyzhx/amazon_polarity")
    sentiment = data.normalize_probe("sentiment", "fancyzhx/amazon_polarity", hub)
    assert sentiment["test"]["label"] == ["negative", "positive"]
    assert sentiment["test"]["text"] == hub["test"]["content"]
    title = data.normalize_probe("title", "fancyzhx/amazon_polarity", hub)
    assert title["test"].column_names == list(data.get("title").columns)
    assert title["test"]["title"] == ["Stopped working", "Does the job"]


def test_unsupported_hub_probe_is_a_clear_error():
    with pytest.raises(data.DataError, match="Supported: qa=rajpurkar/squad"):
        data.normalize_probe("qa", "someone/else", DatasetDict())


def test_full_profile_loaders_use_the_hub_mappings(monkeypatch):
    monkeypatch.setattr(data, "load_hub", hub_fixture)
    full = dataclasses.replace(get_profile("full"), n_train=2)
    assert len(data.load_target(full)["train"]) == 2
    assert data.load_probe("topic", full)["test"]["label"] == ["Business", "Sci/Tech"]


def test_full_profile_without_network_or_cache_fails_fast_with_advice(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from utils import config

    monkeypatch.setattr(config, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # as if the libraries had started online (imported before utils)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    offline_before = datasets.config.HF_HUB_OFFLINE
    start = time.monotonic()
    with pytest.raises(config.HubUnavailableError, match=r"COURSE_PROFILE=tiny.*warm the cache"):
        data.load_target(get_profile("full"))
    assert time.monotonic() - start < 10
    assert datasets.config.HF_HUB_OFFLINE == offline_before, "offline mode must not leak out of the loader"


def test_local_files_are_checked_once_per_content_and_again_when_edited(tmp_path, monkeypatch):
    """A lesson loads the same files dozens of times: the line-by-line check runs once per content, and an
    edited file (even one of the same size, written in the same instant) is checked again."""
    row = {"id": "d_1", "dialogue": "#Person1#: Hi.", "summary": "They greet.", "topic": "greeting"}
    for split in data.SPLITS:
        (tmp_path / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    checked = []
    original = data.read_jsonl
    monkeypatch.setattr(data, "read_jsonl", lambda path, columns=(): checked.append(path) or original(path, columns))
    for _ in range(3):
        data.load_local(tmp_path, data.TARGET_COLUMNS)
    assert len(checked) == len(data.SPLITS), "each file checked once"
    broken = json.dumps({**row, "summary": None})
    (tmp_path / "test.jsonl").write_text(broken + "\n")
    with pytest.raises(data.DataError, match=r"test\.jsonl, line 1: column 'summary' holds null"):
        data.load_local(tmp_path, data.TARGET_COLUMNS)
