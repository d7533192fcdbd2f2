"""Facts beside ROUGE: the corpus's recorded facts, fact recall, grounding, and where the scores are stored."""

import dataclasses
import random
import warnings

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from utils import course, data, evaluation, forgetting, scoring
from utils.config import DATA_DIR, get_profile
from utils.world import synth

DIALOGUE = ("#Person1#: Good afternoon. Can I help you?\n#Person2#: I'm looking for a kettle.\n"
            "#Person1#: This grey kettle is $30.\n#Person2#: Great, I'll take it.")


# --- normalization and matching ---------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [("7pm", "7 p.m."), ("7:00 PM", "7 pm"), ("$1,000", "$1000"), ("$30.00", "$30"),
                                  ("Luigi's", "luigi"), ("the kettle", "kettle")])
def test_normalize_writes_variants_one_way(a, b):
    assert evaluation.normalize(a) == evaluation.normalize(b)


def test_contains_matches_whole_tokens_only():
    assert evaluation.contains("A table for two at 7:30 pm.", "7:30 pm")
    assert not evaluation.contains("A table for two at 7:30 pm.", "7 pm")
    assert not evaluation.contains("It costs $300.", "$30")
    assert not evaluation.contains("Anything", "")
    assert not evaluation.contains("a table for two at 5 pm", "five")


def test_fact_recall_known_cases():
    recorded = ["kettle", "grey", "$30"]
    assert evaluation.fact_recall("#Person2# buys a grey kettle for $30.", recorded) == 1.0
    assert evaluation.fact_recall("#Person2# buys a white backpack for $40.", recorded) == 0.0
    assert evaluation.fact_recall("#Person2# buys a white kettle for $40.", recorded) == pytest.approx(1 / 3)
    assert evaluation.fact_recall("#Person2# buys a gray kettle for $30.", ["kettle", "grey | gray", "$30"]) == 1.0
    assert np.isnan(evaluation.fact_recall("anything", []))


def test_grounding_known_cases():
    assert evaluation.grounding("Tom buys a kettle for $40", DIALOGUE) == 0.0
    assert evaluation.grounding("#Person2# buys a grey kettle for $30 from #Person1#.", DIALOGUE) == 1.0
    # #Person2# and $30 are there, Sunday and #Person3# are not
    assert evaluation.grounding("#Person2# pays $30 on Sunday to #Person3#.", DIALOGUE) == pytest.approx(2 / 4)


def test_checkable_items_follow_the_documented_rules():
    items = evaluation.checkable_items("Tom meets #Person1# at Luigi's on Friday at 7pm. Then Dr. Smith pays $1,000 "
                                  "for four. I agree with Mr. Brown at 7 PM.")
    assert items == ["#Person1#", "7pm", "$1,000", "Luigi", "Friday", "Smith", "Brown"]


def test_a_summary_without_specifics_counts_as_grounded():
    assert evaluation.checkable_items("green") == []
    assert evaluation.grounding("green", DIALOGUE) == 1.0


# --- the corpus records the facts -------------------------------------------------------------------
def scenes(family, n=40, seed=3):
    """``n`` scenes of a family with their filled summaries and recorded facts."""
    rng = random.Random(seed)
    roles = {"A": "#Person1#", "B": "#Person2#"}
    for _ in range(n):
        scene = synth.FAMILIES[family](rng, synth.Slots(rng, held_out=False))
        summaries = [synth.fill(t, scene.slots, roles) for t in scene.summaries]
        yield scene, synth.summary_facts(scene.slots, summaries, roles)


def test_facts_reproduce_the_drawn_slot_values():
    for scene, recorded in scenes("shopping"):
        assert recorded == [scene.slots[key] for key in ("item", "colour", "price")]
    for scene, recorded in scenes("restaurant booking"):
        full = any("{time2}" in text for _, text in scene.turns)  # the wanted time was full: the later one too
        assert recorded == [scene.slots[key] for key in ("n", "day", "time", "time2")[: 4 if full else 3]]
    for scene, recorded in scenes("invitation"):
        declined = "{B} declines" in scene.summaries[0]
        if declined:
            assert recorded == [scene.slots["event"], scene.slots["why"].replace("{B}", "#Person2#")]
    for scene, recorded in scenes("hotel check-in"):
        assert recorded == [f"{scene.slots['nights']} nights"]


def test_every_reference_carries_all_of_its_dialogues_facts():
    for split in data.SPLITS:
        rows = data.read_jsonl(DATA_DIR / "dialogsum" / f"{split}.jsonl")
        assert all(row["facts"] for row in rows)
        assert all(evaluation.fact_recall(row["summary"], row["facts"]) == 1.0 for row in rows)


def test_reference_rows_of_a_test_dialogue_share_its_facts_and_grouping_keeps_them():
    flat = data.load_target(get_profile("smoke"))["test"]
    grouped = data.group_references(flat)
    assert grouped.column_names == ["id", "dialogue", "topic", "references", "facts"]
    by_dialogue = {}
    for row in flat:
        by_dialogue.setdefault(row["dialogue"], []).append(row["facts"])
    assert all(all(f == rows[0] for f in rows) for rows in by_dialogue.values())
    assert grouped["facts"] == [by_dialogue[d][0] for d in grouped["dialogue"]]


def test_grouping_data_without_facts_adds_no_column():
    flat = Dataset.from_list([{"id": "t_0_1", "dialogue": "d", "summary": "a", "topic": "x"}])
    assert data.group_references(flat).column_names == ["id", "dialogue", "topic", "references"]


# --- scores ------------------------------------------------------------------------------------------
def test_score_facts_means_and_intervals():
    predictions = ["#Person2# buys a grey kettle for $30.", "Tom buys a kettle for $40", "green"]
    dialogues = [DIALOGUE] * 3
    recorded = [["kettle", "grey", "$30"], ["kettle", "grey", "$30"], []]
    scores = evaluation.score_facts(predictions, dialogues, recorded, n_resamples=200)
    assert scores["grounding"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert scores["grounding_checked"] == pytest.approx(2 / 3)
    assert scores["fact_recall"] == pytest.approx((1.0 + 1 / 3) / 2)  # the dialogue without facts is left out
    assert scores["fact_recall_ci_low"] <= scores["fact_recall"] <= scores["fact_recall_ci_high"]
    assert scores["grounding_ci_low"] <= scores["grounding"] <= scores["grounding_ci_high"]
    assert "fact_recall" not in evaluation.score_facts(predictions, dialogues, None)


def test_lead_summaries_are_the_first_utterances():
    assert evaluation.lead_summaries([DIALOGUE], 1) == ["#Person1#: Good afternoon. Can I help you?"]
    assert evaluation.lead_summaries([DIALOGUE], 2)[0].count("\n") == 1
    with pytest.raises(ValueError, match="at least 1"):
        evaluation.lead_summaries([DIALOGUE], 0)


def test_rouge_high_facts_wrong_picks_the_best_rouge_among_wrong_facts():
    table = pd.DataFrame({"rouge1": [0.9, 0.7, 0.5], "fact_recall": [1.0, 0.0, 0.3], "grounding": 1.0})
    picked = evaluation.rouge_high_facts_wrong(table)
    assert picked["rouge1"] == 0.7 and picked["measure"] == "fact_recall"
    assert picked["rouge1_rank"] == pytest.approx(1 / 3)
    assert evaluation.rouge_high_facts_wrong(table.assign(fact_recall=1.0)) is None
    no_facts = table.drop(columns="fact_recall").assign(grounding=[0.0, 1.0, 0.2])
    assert evaluation.rouge_high_facts_wrong(no_facts)["rouge1"] == 0.9
    assert evaluation.rouge_high_facts_wrong(table[["rouge1"]]) is None


def test_fact_recall_by_kind_counts_each_fact_once_per_model():
    table = pd.DataFrame({"prediction": ["A grey kettle for $30.", "A white backpack for $40.", "Nothing."],
                          "facts": [["kettle", "grey", "$30"], ["backpack", "Sunday"], None]})
    kind = {"Sunday": "held-out", "grey": "held-out"}.get
    by_kind = scoring.fact_recall_by(table, lambda fact: kind(fact, "seen"))
    assert by_kind.loc["held-out"].tolist() == [2, 0.5] and by_kind.loc["seen"].tolist() == [3, 1.0]
    two = scoring.fact_recall_by(pd.concat([table.assign(model="a"), table.assign(model="b", prediction="")]),
                                 lambda fact: "any")
    assert two.loc[("a", "any"), "fact_recall"] == 0.8 and two.loc[("b", "any"), "fact_recall"] == 0.0
    assert scoring.fact_recall_by(table.drop(columns="facts"), str).empty


def test_explain_output_names_the_missed_facts_and_ungrounded_specifics():
    row = {"dialogue": DIALOGUE, "prediction": "#Person2# buys a white backpack for $40.",
           "references": ["#Person2# buys a grey kettle for $30."], "rouge1": 0.6, "fact_recall": 0.0,
           "grounding": 0.5, "facts": ["kettle", "grey", "$30"]}
    text = scoring.explain_output(row)
    assert "misses ['kettle', 'grey', '$30']" in text and "not in the dialogue: ['$40']" in text


def test_evaluate_summarization_stores_the_fact_measures_beside_rouge(micro_model_dir, micro_profile):
    from utils import modeling

    profile = dataclasses.replace(micro_profile, n_eval_dialogues=3)
    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the micro model's 64-token limit shortens the dialogues
        scores, table = scoring.evaluate_summarization(model, tokenizer, profile)
    for key in [*scoring.SCORE_KEYS, *evaluation.FACT_RECALL_KEYS]:
        assert 0 <= scores[key] <= 1 or key == "gen_len_words", key
    assert {"grounding", "fact_recall", "facts"} <= set(table.columns)
    assert set(scoring.saved_scores(scores)) == {*scoring.SCORE_KEYS, *evaluation.FACT_RECALL_KEYS}


def test_scoreboard_and_metrics_carry_the_fact_measures(monkeypatch):
    def fake_target(model, tokenizer, profile=None, template_name=None, **kwargs):
        return {"rouge1": 0.5, "fact_recall": 0.25, "grounding": 0.75}

    monkeypatch.setattr(forgetting, "target_scores", fake_target)
    monkeypatch.setattr(forgetting, "probe_scores", lambda *a, **k: {"qa": {"main": 0.5}})
    board = forgetting.scoreboard({"base": None}, None, get_profile("smoke"), probes=["qa"], held_out=False)
    assert board.loc["base", "target_fact_recall"] == 0.25 and board.loc["base", "target_grounding"] == 0.75
    assert forgetting.target_measures(board, "base") == {"rouge1": 0.5, "fact_recall": 0.25, "grounding": 0.75}


def test_report_headline_shows_the_fact_measures_and_the_lead_baselines():
    metrics = {"zero_shot": {"rouge1": 0.1, "grounding": 0.9, "fact_recall": 0.2,
                             "lead_2": {"rouge1": 0.3, "grounding": 1.0, "fact_recall": 0.4}},
               "single_task": {"full": {"rouge1": 0.5, "grounding": 0.8}}}
    lines = course._headline(metrics)
    assert "| model | ROUGE-1 | fact recall | grounding |" in lines
    assert "| base (zero-shot) | 0.100 | 0.200 | 0.900 |" in lines
    assert "| lead-2 (first 2 utterances) | 0.300 | 0.400 | 1.000 |" in lines
    assert "| single-task full | 0.500 | - | 0.800 |" in lines


def test_stated_in_finds_a_fact_in_any_text_as_whole_tokens_never_across_texts():
    stated = evaluation.stated_in(["Tom buys a grey kettle for $30.", "Anna meets Kim at 7:30 pm on Sunday."])
    assert stated("grey kettle") and stated("$30") and stated("7:30pm") and stated("Kim")
    assert stated("gray | grey")  # any variant
    assert not stated("$3")  # whole tokens only
    assert not stated("$30 Anna")  # never across two texts
    assert not stated("Fezol")


def test_stated_in_agrees_with_fact_found_in_each_text():
    texts = list(data.load_target(get_profile("smoke"))["train"]["summary"])[:200] + ["#Person1# pays $1,000.", ""]
    facts = sorted({f for fs in data.target_test(get_profile("smoke"))["facts"] for f in fs})
    stated = evaluation.stated_in(texts)
    for fact in [*facts, "$1000", "#Person1#", "grey | gray", " | ", "the"]:
        assert stated(fact) == any(evaluation.fact_found(fact, text) for text in texts), fact
