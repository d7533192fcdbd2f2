"""The synthetic corpus generator: determinism, DialogSum form, made-up and held-out values, probe tasks."""

import copy
import json
import random
import re

import pytest

from utils.config import DATA_DIR, ROOT
from utils.data import PROBES
from utils.world import synth

SPEAKER = re.compile(r"^(#Person[12]#): \S")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """The corpus regenerated with the default seed into a temporary folder."""
    out = tmp_path_factory.mktemp("data")
    return out, synth.generate(out)


def test_default_seed_reproduces_committed_files_byte_for_byte(regenerated):
    out, written = regenerated
    assert len(written) == 3 + 4 * 4 + 3  # target splits, probes (3 splits + meta), chats
    for path in written:
        committed = DATA_DIR / path.relative_to(out)
        assert committed.is_file(), f"{committed} is missing: run `make data`"
        assert path.read_bytes() == committed.read_bytes(), f"{committed} differs from a fresh `make data`"


def test_another_seed_gives_other_data():
    assert synth.target_rows(seed=7)["train"][:20] != synth.target_rows()["train"][:20]


def test_families_are_many_and_each_has_several_phrasings():
    assert len(synth.FAMILIES) >= 12
    rng = random.Random(0)
    for topic in synth.TOPICS:
        dialogues = [synth.make_dialogue(rng, topic, held_out=False) for _ in range(30)]
        assert {d.topic for d in dialogues} == {topic}
        assert all(len(d.summaries) >= synth.N_REFERENCES for d in dialogues)
        assert len({d.dialogue.split("\n")[0] for d in dialogues}) >= 3, f"{topic}: too few opening phrasings"
        assert len({d.summaries[0] for d in dialogues}) > 10, f"{topic}: slots do not vary"


@pytest.mark.parametrize("held_out", [False, True])
def test_dialogues_have_dialogsum_form(held_out):
    rng = random.Random(1)
    for _ in range(300):
        d = synth.make_dialogue(rng, rng.choice(synth.TOPICS), held_out)
        turns = d.dialogue.split("\n")
        assert 3 <= len(turns) <= 10
        speakers = [SPEAKER.match(t)[1] for t in turns]
        assert speakers == ["#Person1#", "#Person2#"] * (len(turns) // 2) + ["#Person1#"] * (len(turns) % 2)
        assert "{" not in d.dialogue and all("{" not in s for s in d.summaries)
        for summary in d.summaries:
            assert "#Person" in summary, f"not in DialogSum's third person: {summary}"
            assert 8 <= synth.words(summary) <= 35
        assert all(answer in d.dialogue for _, answer in d.facts)
        assert held_out or not synth.has_held_out_value(d.dialogue)


def test_held_out_values_are_only_in_the_target_test_split(regenerated):
    out, written = regenerated
    for path in written:
        if path.suffix != ".jsonl":
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        texts = list(dict.fromkeys(r.get("dialogue") or r.get("context") or r["text"] for r in rows))
        texts += [r[key] for r in rows for key in ("summary", "answer", "title") if key in r]
        share = sum(map(synth.has_held_out_value, texts)) / len(texts)
        if path.parent.name == "dialogsum" and path.stem == "test":
            assert 0.3 <= share <= 0.7, f"{path}: {share:.0%} of the texts hold a held-out value"
        else:
            assert share == 0, path
    assert not any(synth.has_held_out_value(text) for text in synth.background_texts(500))


def test_held_out_values_are_made_up_names_places_and_numbers():
    held = synth.held_out_values()
    assert set(held) == set(synth.OPEN_FORMS)
    values = [v for vs in held.values() for v in vs]
    assert all(len(vs) == synth.HELD_OUT_PER_POOL for vs in held.values())
    assert len({v.lower() for v in values}) == len(values), "a held-out value is reserved twice"
    for value in values:  # never a value, word or number the phrasing tables hold
        assert not synth.whole_words(value).search(synth.PHRASING_TEXT), value
    assert all(v.istitle() and v.isalpha() for v in held["city"])
    assert all(re.fullmatch(r"\d{1,2}:\d\d pm", v) for v in held["pm_time"])
    assert all(re.fullmatch(r"\$[\d,]+", v) for v in held["rent"])
    assert held == synth.held_out_values() and held is not synth.HELD_OUT  # a copy, the same every call


def test_open_classes_get_made_up_values_and_pools_the_rest():
    rng = random.Random(3)
    slots = synth.Slots(rng, held_out=False)
    cities = [slots("city") for _ in range(400)]
    made_up = [c for c in cities if c not in synth.POOLS["city"]]
    assert 0.4 <= len(made_up) / len(cities) <= 0.6
    assert len(set(made_up)) > 150, "made-up values should rarely repeat"
    assert {slots("colour") for _ in range(200)} <= set(synth.POOLS["colour"])
    held = synth.Slots(rng, held_out=True)
    assert 0.35 <= sum(held("price") in synth.HELD_OUT["price"] for _ in range(400)) / 400 <= 0.65


def test_held_out_detection_uses_whole_words():
    city, price, time = synth.HELD_OUT["city"][0], synth.HELD_OUT["price"][0], synth.HELD_OUT["pm_time"][0]
    assert synth.has_held_out_value(f"#Person1#: I fly to {city} on Sunday.")
    assert synth.has_held_out_value(f"#Person1#: i fly to {city.lower()}")
    assert not synth.has_held_out_value(f"#Person1#: I fly to {city}ville.")
    assert synth.has_held_out_value(f"It costs {price}.") and not synth.has_held_out_value(f"It costs {price}0.")
    room = synth.HELD_OUT["room"][0]
    assert synth.has_held_out_value(f"She is in room {room}.")
    assert not synth.has_held_out_value(f"It costs ${room}.") and not synth.has_held_out_value(f"It costs $1,{room}.")
    assert synth.has_held_out_value(f"See you at {time}.") and not synth.has_held_out_value(f"See you at 1{time}.")


def test_test_split_has_three_different_references_per_dialogue():
    rows = synth.target_rows()["test"]
    assert len(rows) == synth.TARGET_SIZES["test"] * synth.N_REFERENCES
    for i in range(0, len(rows), 3):
        group = rows[i:i + 3]
        assert [r["id"] for r in group] == [f"test_{i // 3}_{k}" for k in (1, 2, 3)]
        assert len({r["dialogue"] for r in group}) == 1
        assert len({r["summary"] for r in group}) == 3


def test_reviews_are_varied_and_titles_short():
    rng = random.Random(2)
    reviews = [synth.make_review(rng) for _ in range(500)]
    assert {label for _, label, _ in reviews} == {"negative", "positive"}
    assert len({text for text, _, _ in reviews}) > 450
    assert all(1 <= synth.words(title) <= 6 for _, _, title in reviews)
    assert all("{" not in text + title for text, _, title in reviews)


def test_probe_dialogues_name_their_speakers_and_leave_the_tags_to_the_target(regenerated):
    """qa and topic dialogues have two first-named speakers; #Person tags appear only in the target task,
    so no instruction example of the tiny model ties the tags to a label or a span."""
    out, _ = regenerated
    for probe, field in (("qa", "context"), ("topic", "text")):
        for split in ("train", "validation", "test"):
            rows = [json.loads(line) for line in (out / "probes" / probe / f"{split}.jsonl").read_text().splitlines()]
            for row in rows:
                speakers = {line.split(": ", 1)[0] for line in row[field].split("\n")}
                assert len(speakers) == 2 and speakers <= set(synth.CHAT_NAMES), row[field]
                assert "#Person" not in json.dumps(row), row
    qa = [json.loads(line) for line in (out / "probes" / "qa" / "train.jsonl").read_text().splitlines()]
    assert sum(any(name in row["question"] + row["answer"] for name in synth.CHAT_NAMES) for row in qa) > 50


def test_probe_meta_names_a_task_type_and_metric(regenerated):
    out, _ = regenerated
    for probe in PROBES:
        meta = json.loads((out / "probes" / probe / "meta.json").read_text())
        assert meta["task_type"] in {"qa", "classification", "generation"}
        assert meta["main_metric"] in {"f1", "accuracy", "rouge1"}
        assert meta["description"]


def test_card_statistics_are_computed_from_the_files(regenerated, tmp_path):
    out, _ = regenerated
    card = out / "README.md"
    card.write_text(f"# Card\n{synth.STATS_START}\nold numbers\n{synth.STATS_END}\nend\n")
    synth.write_card(card, out)
    text = card.read_text()
    assert "old numbers" not in text and text.endswith(f"{synth.STATS_END}\nend\n")
    assert "| train | 4000 | 4000 |" in text and "| test | 250 | 750 |" in text
    committed = (DATA_DIR / "README.md").read_text()
    assert synth.card_stats(DATA_DIR) in committed, "data/README.md is stale: run `python -m utils.world.synth --card`"
    (tmp_path / "README.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        synth.write_card(tmp_path / "README.md", out)


def test_recording_facts_leaves_every_other_field_as_it_was(monkeypatch):
    """The facts only read the drawn slot values: without them, the rows are the same to the byte."""
    with_facts = synth.target_rows()
    monkeypatch.setattr(synth, "summary_facts", lambda *args: [])
    without = synth.target_rows()
    for split, rows in with_facts.items():
        assert [{k: v for k, v in row.items() if k != "facts"} for row in rows] == \
            [{k: v for k, v in row.items() if k != "facts"} for row in without[split]]
        assert all(row["facts"] for row in rows)


def test_titles_follow_from_the_review():
    """Every title is the one its review's main sentence implies, so a model can learn it (no coin flips)."""
    features = [f for app in synth.APPS.values() for f in app["features"]]
    paired = {}  # review sentence -> its title
    for table in synth.POINTS.values():
        for sentences, titles in ((table["praise"], table["praise_titles"]),
                                  (table["complaints"], table["complaint_titles"])):
            for i, sentence in enumerate(sentences):
                for feature in features:
                    paired[sentence.format(feature=feature)] = synth.cap(titles[i % len(titles)].format(feature=feature))
    rows = synth.probe_rows()["title"]
    for row in rows["train"] + rows["test"]:
        sentences = {s.rstrip() for s in re.split(r"(?<=[.!?]) ", row["text"])}
        sentences |= {synth.cap(s.split(": ", 1)[1]) for s in sentences if ": " in s}
        implied = {paired[s] for s in sentences if s in paired}
        assert row["title"] in implied, row


def test_chats_are_samsum_style_and_new(regenerated):
    """The held-in chats: two first-named speakers, no DialogSum tags, a one-sentence summary naming a
    speaker; only some of the target's scenarios; no chat repeats one another or any corpus dialogue."""
    out, _ = regenerated
    chats = {split: [json.loads(line) for line in (out / "chats" / f"{split}.jsonl").read_text().splitlines()]
             for split in ("train", "validation", "test")}
    assert {split: len(rows) for split, rows in chats.items()} == synth.CHAT_SIZES
    everything = [row for rows in chats.values() for row in rows]
    for row in everything:
        speakers = {line.split(": ", 1)[0] for line in row["dialogue"].split("\n")}
        assert len(speakers) == 2 and speakers <= set(synth.CHAT_NAMES), row["dialogue"]
        assert "#Person" not in row["dialogue"] + row["summary"]
        assert any(name in row["summary"] for name in speakers) and row["summary"].count(". ") == 0
        assert row["topic"] in synth.CHAT_TOPICS
    assert len({row["topic"] for row in everything}) == len(synth.CHAT_TOPICS) < len(synth.TOPICS)
    corpus = [json.loads(line)[key] for path in out.rglob("*.jsonl") if path.parent.name != "chats"
              for line in path.read_text().splitlines() for key in ("dialogue", "context", "text")
              if key in json.loads(line)]
    dialogues = [row["dialogue"] for row in everything]
    assert len(set(dialogues)) == len(dialogues) and not set(dialogues) & set(corpus)
    # informal chats (most show a mark) and plain ones (every message capitalized and ended) are both there
    informal = sum(any(mark in d for mark in (" u ", " u?", "gonna", "wanna", ":)", "haha")) for d in dialogues)
    plain = sum(all(m[:1].isupper() and m.endswith((".", "?", "!")) for m in (line.split(": ", 1)[1]
                                                                          for line in d.split("\n")))
                for d in dialogues)
    share = synth.CHAT_INFORMAL_SHARE
    assert informal > 0.6 * share * len(dialogues) and plain > 0.8 * (1 - share) * len(dialogues)
    target_words = [synth.words(json.loads(line)["summary"]) for line in (out / "dialogsum" / "train.jsonl").open()]
    chat_words = [synth.words(row["summary"]) for row in chats["train"]]
    assert sum(chat_words) / len(chat_words) < sum(target_words) / len(target_words)


# ---------------------------------------------------------------------------------------------
# The phrasing tables: utils/world/phrasing.json
# ---------------------------------------------------------------------------------------------


def test_the_phrasing_file_fits_its_schema_and_documents_every_table():
    tables = synth.load_phrasing()
    assert list(tables) == list(synth.PHRASING_SCHEMA)
    assert set(tables["_about"]) == {"file"} | set(synth.PHRASING_SCHEMA) - {"_about"}, "a table lacks its note"
    assert synth.POOLS is synth.PHRASING["pools"] and synth.CHAT_NAMES is synth.PHRASING["chat_names"]
    # a value with several forms is a tuple, as spoken() expects: the dialogue form, then the summary form
    reasons = tables["pools"]["reason"]
    assert all(isinstance(r, tuple) and len(r) == 2 for r in reasons)
    assert synth.spoken(reasons[0]) == reasons[0][0] and synth.spoken("Monday") == "Monday"


def _broken(tables: dict, key: str, value=None, delete: bool = False) -> dict:
    """A copy of the raw tables with the value at ``key`` (``pools.day.1``) replaced or deleted."""
    tables = copy.deepcopy(tables)
    *parents, last = key.split(".")
    node = tables
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = int(last) if isinstance(node, list) else last
    if delete:
        del node[last]
    else:
        node[last] = value
    return tables


@pytest.mark.parametrize("key, value, delete, message", [
    ("chat_swaps", None, True, "key 'chat_swaps' is missing"),
    ("pools.name", {"seen": ["Tom"]}, False, "pools.name should be a non-empty JSON list"),
    ("small_talk.0.audiance", "all", False, "key 'small_talk[0].audiance' is unknown"),
    ("chat_names", "Amanda", False, "chat_names should be a non-empty JSON list"),
    ("pools.day", [], False, "pools.day should be a non-empty JSON list"),
    ("pools.day.1", 5, False, "pools.day[1] should be a string or a list of strings"),
    ("small_talk.2.where", "middle", False, "small_talk[2].where should be one of end, mid, start"),
    ("asides.positive", ["My only complaint: "], False, "asides.positive should be a str"),
    ("background_frames.moon", "The {v} rose.", False, "key 'background_frames.moon' names no pool"),
])
def test_a_broken_phrasing_file_is_refused_naming_the_key_and_the_file(tmp_path, key, value, delete, message):
    raw = json.loads(synth.PHRASING_FILE.read_text(encoding="utf-8"))
    path = tmp_path / "phrasing.json"
    path.write_text(json.dumps(_broken(raw, key, value, delete)), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        synth.load_phrasing(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)


def test_a_missing_or_unreadable_phrasing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "phrasing.json")) + " is missing"):
        synth.load_phrasing(tmp_path / "phrasing.json")
    (tmp_path / "phrasing.json").write_text('{"pools": {,}}', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "phrasing.json")) + r" is not valid JSON: .*line 1"):
        synth.load_phrasing(tmp_path / "phrasing.json")


def test_the_phrasing_file_ships_with_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {path for pattern in package_data["utils"] for path in (ROOT / "utils").glob(pattern)}
    assert synth.PHRASING_FILE.resolve() in {path.resolve() for path in shipped}, "pyproject.toml's package-data leaves out utils/world/phrasing.json"
