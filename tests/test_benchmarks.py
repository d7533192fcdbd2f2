"""The benchmark code is correct (never how fast anything is: timings belong in `make bench`, not in tests).

The labs' way must really be the labs' way (512-token padding, pad ids in the loss), and both ways must
do the same work (identical generated text), or the speedups would mean nothing.
"""

from __future__ import annotations

import pytest
import torch
from conftest import micro_pairs
from transformers import GenerationConfig

from benchmarks import course_runs, generation, report, train_speed
from benchmarks.lab_way import LAB_MAX_LENGTH, lab_generate, lab_tokenize
from benchmarks.models import FLAN_T5_SMALL_PARAMETERS, flan_t5_small_random
from utils import modeling, training
from utils.config import get_profile


def _prompts(n: int = 8) -> list[str]:
    """Prompts of clearly different lengths, so the course's batches need padding and sorting."""
    sources = micro_pairs(n)["source"]
    return [source.replace("please.", "please. " + "Here is a pen. " * (i % 4)) for i, source in enumerate(sources)]


def test_lab_tokenize_pads_inputs_and_labels_to_512_and_keeps_pad_in_labels(tokenizer):
    tokens = lab_tokenize(micro_pairs(4), tokenizer)
    pad = tokenizer.pad_token_id
    for row in tokens:
        assert len(row["input_ids"]) == len(row["labels"]) == LAB_MAX_LENGTH
        assert row["labels"][-1] == pad, "the labs leave pad tokens in the labels"
        assert -100 not in row["labels"]
        assert sum(row["attention_mask"]) < LAB_MAX_LENGTH  # the rest is padding


def test_course_batches_are_short_and_mask_label_padding(tokenizer, micro_profile, micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    tokens = training.tokenize(micro_pairs(4), tokenizer, micro_profile)
    batch = training.collator(tokenizer, model)([{k: v for k, v in row.items() if k != "length"} for row in tokens])
    assert batch["input_ids"].shape[1] < LAB_MAX_LENGTH and batch["labels"].shape[1] < LAB_MAX_LENGTH
    assert (batch["labels"] == tokenizer.pad_token_id).sum() == 0


def test_lab_and_course_generation_give_identical_outputs(tokenizer, micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    prompts = _prompts(8)
    config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=8)
    lab = lab_generate(model, tokenizer, prompts, config)
    course = generation.course_generate(model, tokenizer, prompts, config, batch_size=3, max_source_length=512)
    assert len(set(map(len, tokenizer(prompts)["input_ids"]))) > 1, "the prompts must differ in length"
    assert lab == course
    figures = generation.compare_generation(model, tokenizer, prompts, config, batch_size=3)
    assert figures["identical_outputs"] and figures["n_examples"] == 8


def test_generation_speedup_uses_the_mean_of_the_courses_two_timings(tokenizer, micro_model_dir, monkeypatch):
    model = modeling.load_model(str(micro_model_dir))
    seconds = iter([2.0, 8.0, 6.0])  # course, labs', course again: the course's 4 s on average
    monkeypatch.setattr(generation, "timed", lambda fn, *args: (fn(*args), next(seconds)))
    config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=4)
    figures = generation.compare_generation(model, tokenizer, _prompts(4), config, batch_size=2)
    assert figures["course"]["seconds"] == pytest.approx(4.0) and figures["lab"]["examples_per_s"] == pytest.approx(0.5)
    assert figures["speedup"] == pytest.approx(2.0)


def test_differing_outputs_fail_the_benchmark():
    with pytest.raises(generation.OutputsDiffer, match="1 of 2 outputs differ"):
        generation.check_identical(["a", "b"], ["a", "c"], ["p1", "p2"])


def test_training_benchmark_trains_both_ways_on_the_same_examples(tokenizer, micro_profile, micro_model_dir):
    make = lambda: modeling.load_model(str(micro_model_dir))  # noqa: E731
    figures = train_speed.compare_training(make, tokenizer, micro_pairs(8), micro_profile, steps=2, batch_size=2)
    assert figures["n_examples"] == 4 and figures["steps"] == 2
    assert figures["lab"]["seconds"] > 0 and figures["course"]["seconds"] > 0
    assert figures["lab_label_pad_share"] > 0.9  # a short summary in 512 positions
    with pytest.raises(ValueError, match="need 40 examples"):
        train_speed.compare_training(make, tokenizer, micro_pairs(8), micro_profile, steps=20, batch_size=2)


def test_dropout_benchmark_times_both_rates_in_abba_order_on_the_same_examples(tokenizer, micro_profile,
                                                                              micro_model_dir):
    made = []

    def make(rate):
        made.append(rate)
        return modeling.load_model(str(micro_model_dir), dropout_rate=rate)

    figures = train_speed.compare_dropout(make, tokenizer, micro_pairs(8), micro_profile, steps=2, batch_size=2)
    assert made == [0.1, 0.0, 0.0, 0.1]
    assert figures["baseline"]["dropout_rate"] == 0.1 and figures["course"]["dropout_rate"] == 0.0
    assert figures["n_examples"] == 4 and figures["baseline"]["seconds"] > 0 and figures["course"]["seconds"] > 0
    with pytest.raises(ValueError, match="need 40 examples"):
        train_speed.compare_dropout(make, tokenizer, micro_pairs(8), micro_profile, steps=20, batch_size=2)


def test_dropout_speedup_averages_the_two_timings_of_each_rate(tokenizer, micro_profile, micro_model_dir,
                                                               monkeypatch):
    durations = iter([3.0, 1.0, 1.5, 5.0])  # A B B A: dropout 0.1 takes 3 s and 5 s, dropout 0 1 s and 1.5 s
    monkeypatch.setattr(train_speed, "time_training", lambda trainer: next(durations))
    make = lambda rate: modeling.load_model(str(micro_model_dir), dropout_rate=rate)  # noqa: E731
    figures = train_speed.compare_dropout(make, tokenizer, micro_pairs(8), micro_profile, steps=2, batch_size=2)
    assert figures["baseline"]["seconds"] == pytest.approx(4.0) and figures["course"]["seconds"] == pytest.approx(1.25)
    assert figures["baseline"]["examples_per_s"] == pytest.approx(1.0)  # 4 examples in 4 s
    assert figures["speedup"] == pytest.approx(3.2)


def test_load_model_overrides_the_dropout_of_every_layer(micro_model_dir):
    model = modeling.load_model(str(micro_model_dir), dropout_rate=0.0)
    assert model.config.dropout_rate == 0.0
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}
    assert modeling.load_model(str(micro_model_dir)).config.dropout_rate == 0.1  # the folder's own value


def test_flan_t5_small_shape_has_its_published_size(tokenizer):
    with torch.device("meta"):  # the shape only; no memory for 77M weights
        model = flan_t5_small_random(tokenizer)
    assert model.lm_head.weight is not model.shared.weight, "FLAN-T5 has its own output layer"
    assert modeling.parameter_counts(model)["total"] == FLAN_T5_SMALL_PARAMETERS


def test_course_timings_are_summed_against_the_budget(monkeypatch, tmp_path):
    names = ["00_welcome", "01_zero_shot"]
    monkeypatch.setattr(course_runs, "course_notebooks", lambda: [tmp_path / f"{n}.ipynb" for n in names])
    summary = course_runs.summarize_timings("smoke", {"00_welcome": 20.0, "old_notebook": 5.0})
    assert summary["total_s"] == 20.0 and summary["missing_notebooks"] == ["01_zero_shot"]
    with_runs = course_runs.summarize_timings("smoke", {"00_welcome": 20.0, course_runs.SHARED_RUNS_STEP: 7.0})
    assert with_runs["total_s"] == 27.0, "the runs the course trains before the lessons count"
    assert summary["within_target"] is True and summary["target_s"] == 300


def test_markdown_shows_each_speedup_and_the_course_budget():
    detail = {"model": "m", "n_examples": 4, "lab": {"examples_per_s": 1.0}, "course": {"examples_per_s": 7.5}}
    figures = {"generation": {"speedup": 7.5, "tiny": detail}, "training": {"speedup": 3.2, "tiny": detail},
               "course": {"tiny": {"notebooks": {"00_a": 60.0}, "total_s": 60.0, "target_s": 1200,
                                   "peak_memory_mb": 1500.0, "peak_process_memory_mb": 1200.0,
                                   "memory_target_mb": 3000, "source": "test"}}}
    figures["dropout"] = {"mixture": {"model": "m", "n_examples": 4, "mean_input_tokens": 250.0, "speedup": 1.6,
                                      "baseline": {"dropout_rate": 0.1, "examples_per_s": 20.0},
                                      "course": {"dropout_rate": 0.0, "examples_per_s": 32.0}}}
    text = report.markdown(figures)
    assert "**7.5x**" in text and "**3.2x**" in text
    assert "| mixture | m | 4 (250) | 0.1 | 20.00 | 0 | 32.00 | **1.60x** |" in text
    assert "**1.0 min** (budget 20 min)" in text and "1.50 GB" in text
    assert "before the lessons" not in text, "no runs before the lessons, no row for them"
    figures["course"]["tiny"]["total_s"] = 90.0  # 30 s of runs trained before the lessons
    assert "| shared runs (lesson 04's learning-rate grid), before the lessons | 30 |" in report.markdown(figures)


def test_lora_benchmark_measures_what_lora_saves(tokenizer, micro_profile, micro_model_dir):
    from peft import LoraConfig, TaskType, get_peft_model

    def make():
        return modeling.load_model(str(micro_model_dir))

    def wrap(model):
        return get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=2, lora_alpha=4, target_modules=["q", "v"]))

    figures = train_speed.compare_lora(make, wrap, tokenizer, micro_pairs(8), micro_profile, steps=2, batch_size=2)
    full, lora = figures["full"], figures["lora"]
    assert full["trainable_parameters"] == full["total_parameters"] > lora["trainable_parameters"] > 0
    assert full["optimizer_state_mb"] == pytest.approx(8 * full["trainable_parameters"] / 1e6, rel=0.01)  # AdamW, fp32
    assert lora["optimizer_state_mb"] == pytest.approx(8 * lora["trainable_parameters"] / 1e6, rel=0.01)
    assert lora["checkpoint_mb"] < full["checkpoint_mb"] and lora["lora"] == {"r": 2, "targets": ["q", "v"]}
    assert figures["lora_time_ratio"] == pytest.approx(lora["seconds_per_step"] / full["seconds_per_step"])
    assert "LoRA r=2 on q, v" in "\n".join(report._lora_rows({"micro": {"model": "micro", **figures}}))


def test_rouge_benchmark_scores_both_ways_identically_and_fails_when_they_differ(monkeypatch):
    from benchmarks import rouge_speed

    figures = rouge_speed.compare(get_profile("smoke"), rounds=2)
    assert figures["rounds"] == 2 and figures["dialogues"] == 16 and figures["speedup"] > 0
    assert list(figures["seconds"]) == ["rouge_score's tokenizer", "the course's (remembering)"]
    unstemmed = rouge_speed.metric_module().RememberingTokenizer
    monkeypatch.setattr(rouge_speed.metric_module(), "RememberingTokenizer", lambda use_stemmer: unstemmed(False))
    with pytest.raises(rouge_speed.ScoresDiffer):
        rouge_speed.compare(get_profile("smoke"), rounds=1)


def test_shared_runs_benchmark_trains_one_after_the_other_first_then_side_by_side(monkeypatch):
    import os

    from benchmarks import shared_runs
    from utils import course

    calls = []
    monkeypatch.setattr(course, "train_shared_runs",
                        lambda profile, side_by_side: calls.append((side_by_side, os.environ["COURSE_RESULTS_DIR"]))
                        or (10.0 if not side_by_side else 6.0))
    monkeypatch.setenv("COURSE_RESULTS_DIR", "/somewhere/kept")
    seconds = shared_runs.compare(get_profile("smoke"))
    assert [side for side, _ in calls] == [False, True] and seconds == {"one after the other": 10.0, "side by side": 6.0}
    assert calls[0][1] != calls[1][1] and "/somewhere/kept" not in {folder for _, folder in calls}, "fresh scratch folders"
    assert os.environ["COURSE_RESULTS_DIR"] == "/somewhere/kept", "the caller's results folder is set back"
