"""Tests of the forgetting probes (utils/forgetting.py): tables, caching, adapter on/off, checkpoint curves."""

from __future__ import annotations

import dataclasses
import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import micro_pairs  # noqa: E402

from utils import forgetting, modeling, plots, scoring, training  # noqa: E402

RESULTS = {
    "base": {"qa": {"main": 0.8}, "topic": {"main": 0.9, "valid_label_share": 1.0},
             "sentiment": {"main": 0.7, "valid_label_share": 0.95}, "title": {"main": 0.4}},
    "full": {"qa": {"main": 0.2}, "topic": {"main": 0.1, "valid_label_share": 0.05},
             "sentiment": {"main": 0.5, "valid_label_share": 0.6}, "title": {"main": 0.1}},
    "lora": {"qa": {"main": 0.7}, "topic": {"main": 0.9, "valid_label_share": 1.0},
             "sentiment": {"main": 0.75, "valid_label_share": 1.0}, "title": {"main": 0.3}},
}


def test_drop_table_has_absolute_and_relative_drops_and_an_average():
    table = forgetting.drop_table(RESULTS)
    assert table.loc["qa", "full drop"] == pytest.approx(0.6)
    assert table.loc["qa", "full rel drop"] == pytest.approx(0.75)
    assert table.loc["sentiment", "lora drop"] == pytest.approx(-0.05)  # improved: a negative drop
    assert table.loc["average", "base"] == pytest.approx(np.mean([0.8, 0.9, 0.7, 0.4]))
    assert table.loc["average", "full drop"] == pytest.approx(np.mean([0.8, 0.9, 0.7, 0.4]) - np.mean(
        [0.2, 0.1, 0.5, 0.1]))


def test_drops_are_models_by_probes():
    table = forgetting.drop_table(RESULTS)
    absolute, relative = forgetting.drops(table), forgetting.drops(table, relative=True)
    assert list(absolute.index) == ["full", "lora"] and "qa" in absolute.columns
    assert absolute.loc["full", "topic"] == pytest.approx(0.8)
    assert relative.loc["full", "topic"] == pytest.approx(0.8 / 0.9)
    figure = plots.heatmap(absolute, "drops")
    ax = figure.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), absolute.to_numpy() * 100)  # the cells are the drops
    assert [t.get_text() for t in ax.texts][:2] == [f"{absolute.iloc[0, 0] * 100:+.1f}",
                                                    f"{absolute.iloc[0, 1] * 100:+.1f}"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(absolute.columns)
    _renders(figure)


def test_valid_label_shares_cover_only_label_probes():
    shares = forgetting.valid_label_shares(RESULTS)
    assert set(shares.index) == {"topic", "sentiment"}
    assert shares.loc["topic", "full"] == pytest.approx(0.05)


def test_forgetting_metrics_section_matches_the_contract():
    section = forgetting.forgetting_metrics(RESULTS)
    for probe in ("qa", "topic", "sentiment", "title"):
        assert set(section[probe]) >= {"base", "full", "lora"}
    assert section["qa"]["full"] == 0.2
    assert section["topic"]["valid_label_share"]["full"] == 0.05
    assert "valid_label_share" not in section["qa"]
    assert section["average"]["lora"] == pytest.approx(np.mean([0.7, 0.9, 0.75, 0.3]))


def test_curve_forgetting_is_best_earlier_minus_final():
    curve = pd.DataFrame({"target_rouge1": [0.1, 0.3, 0.4], "qa": [0.5, 0.8, 0.2], "topic": [0.9, 0.5, 0.95]},
                         index=pd.Index([0, 10, 20], name="step"))
    result = forgetting.curve_forgetting(curve, probes=("qa", "topic"))
    assert result["qa"] == pytest.approx(0.6) and result["topic"] == pytest.approx(-0.05)
    figure = plots.learning_vs_forgetting(curve)
    lines = {line.get_label(): line.get_ydata() for line in figure.axes[0].lines}
    np.testing.assert_allclose(lines["target_rouge1"], [10, 30, 40])
    np.testing.assert_allclose(lines["qa"], [50, 80, 20])
    np.testing.assert_allclose(lines["average of the others"], [70, 65, 57.5])
    _renders(figure)


def _renders(figure) -> None:
    """The figure draws to a non-empty PNG (savefig returns None whatever it drew, so look at the bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG") and len(buffer.getvalue()) > 2000


def test_scores_are_cached_by_weights_and_settings(micro_model_dir, micro_profile):
    model = modeling.load_model(str(micro_model_dir))
    calls = []

    def compute():
        calls.append(1)
        return {"main": 0.5}

    first = scoring.cached_scores("probe-x", model, {"n": 1}, compute, micro_profile)
    again = scoring.cached_scores("probe-x", model, {"n": 1}, compute, micro_profile)
    assert first == again == {"main": 0.5} and len(calls) == 1
    scoring.cached_scores("probe-x", model, {"n": 2}, compute, micro_profile)  # other settings
    assert len(calls) == 2
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # other weights: never mistaken for the old model
    scoring.cached_scores("probe-x", model, {"n": 1}, compute, micro_profile)
    assert len(calls) == 3


def test_adapter_off_gives_back_the_base_model(micro_model_dir, micro_profile):
    base = modeling.load_model(str(micro_model_dir))
    lora = modeling.add_lora(modeling.load_model(str(micro_model_dir)), micro_profile)
    with torch.no_grad():  # a trained-looking adapter (LoRA's B starts at zero, i.e. no change)
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    ids = torch.tensor([[5, 6, 7, 1]])
    decoder = torch.zeros((1, 3), dtype=torch.long)

    def logits(model):
        with torch.no_grad():
            return model(input_ids=ids, decoder_input_ids=decoder).logits

    assert not torch.allclose(logits(lora), logits(base))
    key_on = scoring.weights_key(lora)
    with lora.disable_adapter():  # PEFT's own switch, as lesson 04 uses it
        assert torch.allclose(logits(lora), logits(base))
        assert scoring.adapter_is_off(lora)
        key_off = scoring.weights_key(lora)
    assert key_off != key_on and key_off.endswith("-adapter-off"), "adapter off is scored as another model"
    assert scoring.weights_key(lora) == key_on and not scoring.adapter_is_off(lora)
    assert not scoring.adapter_is_off(base)


def test_scores_inside_disable_adapter_are_cached_apart_from_the_adapters(micro_model_dir, micro_profile):
    lora = modeling.add_lora(modeling.load_model(str(micro_model_dir)), micro_profile)
    calls = []

    def compute():
        calls.append(scoring.adapter_is_off(lora))
        return {"main": 0.5 if calls[-1] else 0.25}

    on = scoring.cached_scores("probe-y", lora, {"n": 1}, compute, micro_profile)
    with lora.disable_adapter():
        off = scoring.cached_scores("probe-y", lora, {"n": 1}, compute, micro_profile)
    assert (on, off, calls) == ({"main": 0.25}, {"main": 0.5}, [False, True])
    assert scoring.cached_scores("probe-y", lora, {"n": 1}, compute, micro_profile) == on and len(calls) == 2


def test_learning_curve_visits_base_checkpoints_and_final_in_order(micro_profile, monkeypatch):
    run = training.train("curve_test", "full", micro_pairs(16), micro_profile)
    seen = []

    def fake_target(model, tokenizer, profile, n=None, **_):
        seen.append(scoring.weights_key(model))
        return {"rouge1": len(seen) / 10}

    monkeypatch.setattr(forgetting, "target_scores", fake_target)
    monkeypatch.setattr(forgetting, "probe_scores",
                        lambda model, tokenizer, profile, probes, n=None: {p: {"main": 0.5} for p in probes})
    curve = forgetting.learning_curve(run, None, micro_profile, probes=("qa",))
    steps = [step for step, _ in training.checkpoints(run.path)]
    assert list(curve.index) == [0, *steps[:-1], run.settings.steps]
    assert list(curve["target_rouge1"]) == pytest.approx([0.1 * (i + 1) for i in range(len(curve))])
    assert seen[0] == scoring.weights_key(modeling.load_model(micro_profile.model))
    assert seen[-1] == scoring.weights_key(run.model)
    assert len(set(seen)) == len(seen)  # every point is a different model


def _answers(probe, profile):
    """Stand-in probe outputs: one (wrong) answer per test row."""
    n = len(forgetting.data.probe_test(probe, profile))
    return {"predictions": ["no idea"] * n, "n_shortened": 0, "scores": [0.0] * n}


def test_target_and_probe_scores_are_cached_per_evaluation_set(micro_model_dir, micro_profile, monkeypatch):
    model = modeling.load_model(str(micro_model_dir))
    calls = []

    def fake_summaries(model, tokenizer, dialogues, profile, template_name, desc):
        calls.append(("target", len(dialogues), template_name))
        return ["no summary"] * len(dialogues), []

    def fake_probe(model, tokenizer, probe, profile):
        calls.append((probe, profile.n_probe_eval))
        return _answers(probe, profile)

    monkeypatch.setattr(scoring, "_summarize", fake_summaries)
    monkeypatch.setattr(forgetting, "probe_outputs", fake_probe)
    assert len(forgetting.target_scores(model, None, micro_profile, n=2)["rouge1_per_dialogue"]) == 2
    assert len(forgetting.target_scores(model, None, micro_profile, n=3)["rouge1_per_dialogue"]) == 3
    forgetting.target_scores(model, None, micro_profile, n=2)  # cached
    forgetting.target_scores(model, None, micro_profile, template_name="tldr", n=2)  # another prompt
    forgetting.probe_scores(model, None, micro_profile, probes=("qa",), n=2)
    forgetting.probe_scores(model, None, micro_profile, probes=("qa",), n=3)
    forgetting.probe_scores(model, None, micro_profile, probes=("qa",), n=3)  # cached
    assert calls == [("target", 2, "summarize_following_conversation"), ("target", 3, "summarize_following_conversation"),
                     ("target", 2, "tldr"), ("qa", 2), ("qa", 3)]


def test_another_tokenizer_means_another_model(micro_model_dir, micro_profile, monkeypatch):
    model = modeling.load_model(str(micro_model_dir))
    calls = []
    monkeypatch.setattr(forgetting, "probe_outputs", lambda model, tokenizer, probe, profile, *_: calls.append(tokenizer)
                        or _answers(probe, profile))
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    other = modeling.load_tokenizer(str(micro_model_dir))
    other.add_tokens(["<brand-new-token>"])
    for tok in (tokenizer, modeling.load_tokenizer(str(micro_model_dir)), other):
        forgetting.probe_scores(model, tok, micro_profile, probes=("qa",), n=2)
    assert calls == [tokenizer, other]  # the second, identical tokenizer hit the cache


# --- lesson 05's decision tables --------------------------------------------------------------------------
BOARD_SCORES = {  # model -> (target ROUGE-1 with the evaluation prompt, with the held-out one, probe mains)
    "base": (0.10, 0.08, {"qa": 0.8, "topic": 1.0, "sentiment": 0.9, "title": 0.5}),
    "full": (0.50, 0.45, {"qa": 0.2, "topic": 0.4, "sentiment": 0.6, "title": 0.2}),
    "multitask": (0.46, 0.44, {"qa": 0.8, "topic": 0.9, "sentiment": 0.9, "title": 0.4}),
}


@pytest.fixture
def board(monkeypatch):
    """The scoreboard of three stand-in models, with the scorers replaced by the table above."""
    def target(model, tokenizer, profile, template_name=forgetting.scoring.EVAL_TEMPLATE):
        return {"rouge1": BOARD_SCORES[model][0 if template_name == forgetting.scoring.EVAL_TEMPLATE else 1]}

    def probes(model, tokenizer, profile, probes):
        return {probe: {"main": BOARD_SCORES[model][2][probe]} for probe in probes}

    monkeypatch.setattr(forgetting, "target_scores", target)
    monkeypatch.setattr(forgetting, "probe_scores", probes)
    return forgetting.scoreboard({name: name for name in BOARD_SCORES}, tokenizer=None, profile=None)


def test_scoreboard_has_one_row_per_model_and_the_probe_average(board):
    assert list(board.index) == ["base", "full", "multitask"]
    assert list(board.columns) == ["target", "target_held_out", "qa", "topic", "sentiment", "title", "probe_average"]
    assert board.loc["full", "target"] == 0.50 and board.loc["full", "target_held_out"] == 0.45
    assert board.loc["base", "probe_average"] == pytest.approx(0.8)
    assert board.loc["multitask", "probe_average"] == pytest.approx(0.75)


def test_retention_table_divides_by_the_base_and_measures_the_gap_to_full(board):
    table = forgetting.retention_table(board)
    assert list(table.index) == ["full", "multitask"]  # the base is the yardstick, not a row
    assert table.loc["full", "probe_retention"] == pytest.approx(0.35 / 0.8)
    assert table.loc["multitask", "probe_retention"] == pytest.approx(0.75 / 0.8)
    assert table.loc["full", "target_gap"] == pytest.approx(0.0)
    assert table.loc["multitask", "target_gap"] == pytest.approx(0.04)  # behind full by 4 points


def test_retention_is_undefined_when_the_base_scores_nothing(board):
    board.loc["base", "probe_average"] = 0.0
    assert forgetting.retention_table(board)["probe_retention"].isna().all()


def test_fresh_and_cached_scores_are_the_same_numbers(micro_model_dir, micro_profile):
    """The cache stores 6 digits; a score computed now must equal the same score read back later."""
    model = modeling.load_model(str(micro_model_dir))
    fresh = scoring.cached_scores("thirds", model, {"k": 1}, lambda: {"main": 1 / 3, "per": [2 / 3]},
                                     micro_profile)
    cached = scoring.cached_scores("thirds", model, {"k": 1}, lambda: pytest.fail("not cached"), micro_profile)
    assert fresh == cached
    assert fresh["main"] == pytest.approx(1 / 3, abs=1e-6)


def test_per_example_probe_scores_average_to_the_probe_score(micro_model_dir, micro_profile, monkeypatch):
    generate, calls = forgetting.evaluation.generate, []
    monkeypatch.setattr(forgetting.evaluation, "generate", lambda *a, **k: calls.append(1) or generate(*a, **k))
    model = modeling.load_model(str(micro_model_dir))
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    profile = dataclasses.replace(micro_profile, max_source_length=1024)  # the probes' prompts whole
    for probe in ("qa", "topic", "title"):
        per_example = forgetting.probe_example_scores(model, tokenizer, probe, profile, n=6)
        main = forgetting.probe_scores(model, tokenizer, profile, probes=(probe,), n=6)[probe]["main"]
        assert len(per_example) == 6
        assert per_example.mean() == pytest.approx(main, abs=1e-5)
    assert len(calls) == 3, "each probe's answers are generated once, for the score and the per-row scores"


def test_paired_differences_say_cant_tell_unless_the_interval_excludes_zero():
    rng = np.random.default_rng(0)
    base = {"qa": rng.uniform(0.5, 1, 200), "topic": (rng.uniform(size=200) < 0.9).astype(float)}
    forgot = {"qa": base["qa"] - 0.3, "topic": np.zeros(200)}
    same = {p: s[rng.permutation(len(s))] for p, s in base.items()}  # same marginal, no real difference
    table = forgetting.paired_differences(base, forgot)
    assert table.loc["qa", "mean_diff"] == pytest.approx(0.3)
    assert table.loc["average", "mean_diff"] == pytest.approx((0.3 + base["topic"].mean()) / 2)
    assert (table["verdict"] == "a higher").all()
    assert forgetting.paired_differences(forgot, base).loc["average", "verdict"] == "b higher"
    shuffled = forgetting.paired_differences(base, same)
    assert shuffled.loc["average", "ci_low"] < 0 < shuffled.loc["average", "ci_high"]
    assert shuffled.loc["average", "verdict"] == "can't tell"
    with pytest.raises(ValueError, match="same probes"):
        forgetting.paired_differences(base, {"qa": base["qa"]})


def test_target_example_scores_are_each_dialogues_rouge1_and_average_to_the_score(micro_model_dir, micro_profile,
                                                                                  monkeypatch):
    model = modeling.load_model(str(micro_model_dir))
    calls = []

    def fake_summaries(model, tokenizer, dialogues, profile, template_name, desc):
        calls.append(template_name)  # the first dialogue's reference, word for word; nothing of the second's
        return [forgetting.data.target_test(profile)["references"][0][0], "zzz"], []

    monkeypatch.setattr(scoring, "_summarize", fake_summaries)
    per_dialogue = forgetting.target_example_scores(model, None, micro_profile, n=2)
    assert per_dialogue.tolist() == [pytest.approx(1.0), 0.0]
    scores = forgetting.target_scores(model, None, micro_profile, n=2)
    assert scores["rouge1"] == pytest.approx(per_dialogue.mean()) and len(calls) == 1  # the summaries cached


def test_a_model_summarized_once_is_not_summarized_again_by_another_lesson(micro_model_dir, micro_profile,
                                                                          monkeypatch):
    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    profile = dataclasses.replace(micro_profile, n_eval_dialogues=3)
    generate, calls = scoring.evaluation.generate, []
    monkeypatch.setattr(scoring.evaluation, "generate", lambda *a, **k: calls.append(1) or generate(*a, **k))
    scores, table = scoring.evaluate_summarization(model, tokenizer, profile)  # as lesson 03 scores a run
    board = forgetting.target_scores(model, tokenizer, profile)  # as lesson 04's scoreboard scores it again
    assert len(calls) == 1, "a model summarized by one lesson was summarized again by the next"
    assert board["rouge1"] == scores["rouge1"] and board["rouge1_per_dialogue"] == list(table["rouge1"])
    uncached = scoring.summarize(model, tokenizer, list(table["dialogue"]), profile)
    assert list(table["prediction"]) == uncached and len(calls) == 2
    forgetting.target_scores(model, tokenizer, dataclasses.replace(profile, max_new_tokens=3))  # other decoding
    assert len(calls) == 3
