"""The evaluation sets written outside the generator: hand-written dialogues and the real DialogSum rows.

Both are in DialogSum's schema with key facts; every fact must be found in its dialogue and in its summary by
the course's own matcher, and the hand-written dialogues must stay out of every file a model is trained on.
"""

from __future__ import annotations

import json
import re

import pytest

from utils import evaluation
from utils.config import DATA_DIR
from utils.scoring import OUTSIDE_SETS

SETS = OUTSIDE_SETS
COLUMNS = ("id", "dialogue", "summary", "topic", "facts")
TURN = re.compile(r"#Person[12]#: \S")
#: The files the tiny model and the course train on (the synthetic target task and the held-in chats).
TRAINING_FILES = sorted((DATA_DIR / "dialogsum").glob("*.jsonl")) + sorted((DATA_DIR / "chats").glob("*.jsonl"))
#: A turn this long is too specific to occur in another dialogue by chance.
LONG_TURN = 30


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in SETS[name].read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", SETS)
def test_rows_have_the_schema(name):
    rows = _rows(name)
    assert len(rows) >= (30 if name == "hand-written" else 4)
    for row in rows:
        assert all(isinstance(row.get(c), str) and row[c].strip() for c in COLUMNS[:-1]), row.get("id")
        assert isinstance(row["facts"], list) and row["facts"], row["id"]
        assert all(isinstance(f, str) and evaluation.fact_variants(f) for f in row["facts"]), row["id"]
        turns = row["dialogue"].split("\n")
        assert turns[0].startswith("#Person1#: ") and all(TURN.match(t) for t in turns), row["id"]
        assert {t[:10] for t in turns} == {"#Person1#:", "#Person2#:"}, row["id"]


def test_ids_are_unique():
    ids = [row["id"] for name in SETS for row in _rows(name)]
    assert len(ids) == len(set(ids))


def test_handwritten_dialogues_are_dialogsum_shaped():
    for row in _rows("hand-written"):
        assert 6 <= row["dialogue"].count("\n") + 1 <= 14, row["id"]
        assert 2 <= len(row["facts"]) <= 5, row["id"]
        assert "#Person" in row["summary"] or re.search(r"\b[A-Z][a-z]+", row["summary"]), row["id"]


@pytest.mark.parametrize("name", SETS)
def test_every_fact_is_in_its_dialogue_and_its_summary(name):
    missing = [(row["id"], fact, where) for row in _rows(name) for fact in row["facts"]
               for where in ("dialogue", "summary") if not evaluation.fact_found(fact, row[where])]
    assert not missing


def test_real_rows_keep_their_source_and_license():
    for row in _rows("real DialogSum"):
        assert row["dialogsum_id"] and row["license"] == "CC BY-NC-SA 4.0", row["id"]
        assert row["sources"] and all(url.startswith("https://") for url in row["sources"]), row["id"]
        assert row["summary"] in row["summaries"] and len(row["summaries"]) == 3, row["id"]
        assert row["hf_test_index"] in row["hf_test_rows"], row["id"]
        for output in row.get("flan_t5_base_zero_shot", []):
            assert output["output"] and output["source"].startswith("https://") and "{dialogue}" in output["prompt"]


def _training_text() -> str:
    """Every text field of every training file, decoded, one per line."""
    assert TRAINING_FILES, "no training files found under data/"
    return "\n".join(value for path in TRAINING_FILES
                     for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
                     for value in json.loads(line).values() if isinstance(value, str))


def test_handwritten_dialogues_are_in_no_training_file():
    training = _training_text()
    for row in _rows("hand-written"):
        assert row["dialogue"] not in training, row["id"]
        for turn in row["dialogue"].split("\n"):
            said = turn.split(": ", 1)[1]
            if len(said) >= LONG_TURN:
                assert said not in training, (row["id"], said)


def test_real_dialogues_are_in_no_training_file():
    training = _training_text()
    for row in _rows("real DialogSum"):
        assert row["dialogue"] not in training, row["id"]


def test_the_benchmark_counts_invented_names_and_scores_lead_2():
    from benchmarks.outside_dialogues import LEAD_LINES, score
    from utils.scoring import invented_names, outside_dialogues

    dialogue = "#Person1#: Is Gareth coming at two?\n#Person2#: Yes, to 14 Larch Close."
    assert invented_names("#Person1# asks if Gareth comes to Larch Close on Friday at 3 pm.", dialogue) == ["Friday"]
    assert invented_names("Harry says Gareth is coming.", dialogue) == []  # a sentence's first word is not checked
    rows = outside_dialogues("hand-written")
    lead = ["\n".join(row["dialogue"].split("\n")[:LEAD_LINES]) for row in rows]
    scores = score(lead, rows, seed=0)
    assert scores["invented_names_per_summary"] == 0 and 0 < scores["fact_recall"] < 1 and scores["n"] == len(rows)


def test_score_outside_scores_each_model_beside_lead_2(micro_model_dir, micro_profile):
    from utils import evaluation, modeling
    from utils.scoring import outside_dialogues, score_outside

    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    table, outputs = score_outside({"micro": model}, tokenizer, micro_profile, sets=("real DialogSum",))
    rows = outside_dialogues("real DialogSum")
    assert list(table.index) == [("real DialogSum", "lead-2"), ("real DialogSum", "micro")]
    assert len(outputs["real DialogSum"]["micro"]) == len(rows) == table.loc[("real DialogSum", "micro"), "dialogues"]
    lead = evaluation.score_facts(evaluation.lead_summaries([r["dialogue"] for r in rows], 2),
                                  [r["dialogue"] for r in rows], [r["facts"] for r in rows], seed=micro_profile.seed)
    assert table.loc[("real DialogSum", "lead-2"), "fact recall"] == lead["fact_recall"]
    assert table.loc[("real DialogSum", "micro"), "prompts cut"] > 0  # test_0 is longer than the micro profile's 64
