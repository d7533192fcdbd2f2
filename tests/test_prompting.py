"""Few-shot prompts: shots only from the train split, and every prompt's length reported, never cut."""

from __future__ import annotations

import pandas as pd
import pytest
from datasets import Dataset

from utils import prompting
from utils.config import get_profile
from utils.prompting import ShotLeakError


class WordTokenizer:
    """A stand-in tokenizer: one token per word plus the end-of-sequence token, like T5 counts."""

    def __call__(self, texts, verbose: bool = True):  # verbose: as a Hugging Face tokenizer takes it
        return {"input_ids": [list(range(len(text.split()) + 1)) for text in texts]}


def _row(split: str, i: int) -> dict:
    return {"id": f"{split}_{i}", "dialogue": f"#Person1#: {split} question {i}?\n#Person2#: Answer {i}.",
            "summary": f"#Person2# answers {split} question {i}.", "topic": "questions"}


@pytest.fixture
def train():
    return Dataset.from_list([_row("train", i) for i in range(20)])


@pytest.fixture
def test():
    return Dataset.from_list([_row("test", i) for i in range(5)])


def test_pick_shots_draws_from_train_reproducibly(train, test):
    shots = prompting.pick_shots(train, 3, seed=1, test=test)
    assert len(shots) == 3
    assert {s["id"] for s in shots} <= set(train["id"])
    assert shots == prompting.pick_shots(train, 3, seed=1, test=test)
    assert [s["id"] for s in shots] != [s["id"] for s in prompting.pick_shots(train, 3, seed=2)]


def test_pick_shots_from_the_test_split_is_refused(test):
    with pytest.raises(ShotLeakError, match="train split"):
        prompting.pick_shots(test, 2, test=test)


def test_a_test_dialogue_under_another_id_is_caught(train, test):
    disguised = dict(test[0], id="train_999")
    with pytest.raises(ShotLeakError, match="train_999"):
        prompting.check_shots([train[0], disguised], test)


def test_check_shots_accepts_train_shots_and_only_them(train, test):
    shots = [train[0], train[1]]
    prompting.check_shots(shots, test)  # train shots pass, whether the test split is flat ...
    grouped = [{"id": f"group_{r['id']}", "dialogue": r["dialogue"], "references": [r["summary"]]} for r in test]
    prompting.check_shots(shots, grouped)  # ... or grouped by dialogue
    with pytest.raises(ShotLeakError, match=r"1 of 3 few-shot exemplars .*: test_2\."):
        prompting.check_shots([*shots, test[2]], test)  # the same check refuses the one test row among them


def test_compare_styles_refuses_test_shots_before_generating(test):
    grouped = [{"id": r["id"], "dialogue": r["dialogue"], "references": [r["summary"]]} for r in test]
    with pytest.raises(ShotLeakError):
        prompting.compare_styles(None, None, grouped, shots=[test[0], test[1]], profile=get_profile("smoke"))


def test_pick_shots_checks_k(train):
    with pytest.raises(ValueError, match="0 <= k <= 20"):
        prompting.pick_shots(train, 21)


def test_pick_shots_within_a_token_budget():
    rows = [_row("train", i) for i in range(10)]
    rows[3]["summary"] = rows[7]["summary"] = "Short."  # only these two solved examples are short
    train = Dataset.from_list(rows)
    lengths = {r["id"]: len(prompting.shot_text(r).split()) + 1 for r in rows}
    budget = lengths["train_3"]
    assert sorted(lengths.values())[2] > budget  # the other rows are longer
    shots = prompting.pick_shots(train, 2, tokenizer=WordTokenizer(), max_tokens=budget)
    assert [s["id"] for s in shots] == ["train_3", "train_7"]
    with pytest.raises(ValueError, match="at most 3 tokens"):
        prompting.pick_shots(train, 1, tokenizer=WordTokenizer(), max_tokens=3)
    with pytest.raises(ValueError, match="tokenizer"):
        prompting.pick_shots(train, 1, max_tokens=100)


def test_styles_add_instruction_then_solved_examples(train, test):
    query, shots = test[0], [train[0], train[1]]
    prompts = {style: prompting.build_prompt(query, style, shots) for style in prompting.STYLES}
    assert prompts["no_instruction"] == query["dialogue"]
    assert prompts["zero_shot"] == prompting.eval_template().render_source(query)
    assert train[0]["summary"] in prompts["one_shot"] and train[1]["summary"] not in prompts["one_shot"]
    assert all(shot["summary"] in prompts["few_shot"] for shot in shots)
    for style in prompting.STYLES:
        assert prompts[style].count(query["dialogue"]) == 1
        assert query["summary"] not in prompts[style]  # the answer is never in its own prompt
    assert prompts["few_shot"].endswith(prompts["zero_shot"])


def test_build_prompt_rejects_bad_style_and_missing_shots(test):
    with pytest.raises(ValueError, match="Unknown prompt style"):
        prompting.build_prompt(test[0], "two_shot")
    with pytest.raises(ValueError, match="at least 2 shot"):
        prompting.build_prompt(test[0], "few_shot", shots=[])


def test_build_prompts_table(train, test):
    table = prompting.build_prompts(list(test)[:2], shots=[train[0], train[1]], styles=("zero_shot", "few_shot"))
    assert list(table.columns) == ["id", "style", "prompt"]
    assert table["style"].tolist() == ["zero_shot", "few_shot"] * 2
    assert table["id"].tolist() == ["test_0", "test_0", "test_1", "test_1"]


def test_length_report_flags_long_prompts_without_cutting():
    prompts = ["one two", "one two three four five six", "a b c d"]  # 3, 7 and 5 tokens with </s>
    report = prompting.length_report(WordTokenizer(), prompts, limit=5)
    assert report["tokens"].tolist() == [3, 7, 5]
    assert report["fits"].tolist() == [True, False, True]
    assert report["over_by"].tolist() == [0, 2, 0]
    sentence = prompting.describe_lengths(report)
    assert "1 of 3 prompts exceed the 5-token limit" in sentence and "#1 (7 tokens)" in sentence


def test_length_report_names_the_prompts_that_do_not_fit():
    report = prompting.length_report(WordTokenizer(), ["a b c d e f", "a b"], limit=5, names=["t_0/few", "t_0/zero"])
    assert report.loc["t_0/few", "over_by"] == 2
    assert "t_0/few (7 tokens)" in prompting.describe_lengths(report)
    with pytest.raises(ValueError, match="one name per prompt"):
        prompting.length_report(WordTokenizer(), ["a"], limit=5, names=["x", "y"])


def test_describe_lengths_when_all_fit():
    report = prompting.length_report(WordTokenizer(), ["a b", "a b c"], limit=10)
    assert prompting.describe_lengths(report, "dialogues") == (
        "All 2 dialogues fit in the 10-token limit (longest: 4 tokens)."
    )


def test_length_report_rejects_a_bad_limit():
    with pytest.raises(ValueError, match="positive"):
        prompting.length_report(WordTokenizer(), ["a"], limit=0)


def test_length_table_counts_words_and_tokens(train):
    table = prompting.length_table(train.select(range(3)), WordTokenizer())
    assert isinstance(table, pd.DataFrame) and len(table) == 3
    first = table.iloc[0]
    assert first["dialogue_words"] == len(train[0]["dialogue"].split())
    assert first["dialogue_tokens"] == first["dialogue_words"] + 1
    assert first["summary_tokens"] == first["summary_words"] + 1
    assert first["prompt_tokens"] > first["dialogue_tokens"]  # the instruction adds tokens


def test_templates_section_saves_validation_choices_with_their_test_scores():
    validation = pd.DataFrame({"template": ["a", "b", "held"], "rouge1": [0.4, 0.2, 0.3],
                               "rouge1_ci_low": [0.3, 0.1, 0.2], "rouge1_ci_high": [0.5, 0.3, 0.4]})
    test = pd.DataFrame({"template": ["a", "b"], "rouge1": [0.35, 0.25]})
    section = prompting.templates_section(validation, test, {"mean_diff": 0.1, "p_a_better": 0.9}, best="a",
                                          worst="b", held_out="held", n_validation_dialogues=48,
                                          n_test_dialogues=64, n_training_templates=8)
    assert section["per_template"]["b"] == {"rouge1": 0.2, "rouge1_ci_low": 0.1, "rouge1_ci_high": 0.3}
    assert (section["best_rouge1"], section["best_validation_rouge1"], section["worst_rouge1"]) == (0.35, 0.4, 0.25)
    assert section["held_out_rouge1"] == 0.3 and section["best_minus_worst"] == 0.1
    assert (section["n_dialogues"], section["n_validation_dialogues"], section["n_summary_templates"]) == (64, 48, 3)
