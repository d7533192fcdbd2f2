"""Evaluation helpers: batched generation, bootstrap intervals, probe metrics, forgetting measures."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import micro_t5, micro_tokenizer
from datasets import Dataset
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import GenerationConfig, PreTrainedTokenizerFast

from utils import data, evaluation, modeling, scoring, templates
from utils.config import TINY_MODEL_DIR, get_profile

# --------------------------------------------------------------------------------------------------
# A tiny random T5 and a word-level tokenizer, built in memory (no files, no network)
# --------------------------------------------------------------------------------------------------

WORDS = ("summarize the following conversation person1 person2 hello how are you fine thanks bye "
         "train leaves at nine dinner plans tonight a b c d e f g").split()
PROMPTS = [
    "hello how are you",
    "a b",
    "summarize the following conversation person1 hello person2 bye",
    "c",
    "fine thanks d e f g",
    "the train leaves at nine",
    "dinner plans tonight",
]


@pytest.fixture(scope="module")
def tokenizer():
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def model(tokenizer):
    t5 = micro_t5(len(tokenizer), seed=0, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                  num_heads=2, feed_forward_proj="relu")
    with torch.no_grad():  # large random weights: outputs differ from prompt to prompt
        for parameter in t5.parameters():
            parameter.normal_(0, 0.5)
    return t5


GREEDY = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=6)


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def test_generation_config_is_greedy_with_profile_budget():
    profile = get_profile("smoke")
    config = evaluation.generation_config(profile)
    assert isinstance(config, GenerationConfig)
    assert config.do_sample is False and config.num_beams == 1
    assert config.max_new_tokens == profile.max_new_tokens


@pytest.fixture(scope="module")
def one_by_one(model, tokenizer):
    """Each prompt generated alone: no padding, no batching."""
    return [evaluation.generate(model, tokenizer, [p], GREEDY, progress=False)[0] for p in PROMPTS]


@pytest.mark.parametrize("batch_size", [2, 3, 16])
def test_batched_generation_equals_one_by_one_in_input_order(model, tokenizer, one_by_one, batch_size):
    batched = evaluation.generate(model, tokenizer, PROMPTS, GREEDY, batch_size=batch_size, progress=False)
    assert batched == one_by_one
    assert len(set(batched)) > 3  # outputs depend on the prompt, so a mix-up of order would show
    reversed_outputs = evaluation.generate(model, tokenizer, PROMPTS[::-1], GREEDY, batch_size=batch_size,
                                           progress=False)
    assert reversed_outputs == batched[::-1]


def test_batches_are_length_sorted_and_padded_dynamically(model, tokenizer, monkeypatch):
    widths = []
    real_generate = model.generate

    def spy(**batch):
        widths.append((batch["input_ids"].shape, batch["attention_mask"].sum(dim=1).max().item()))
        return real_generate(**batch)

    monkeypatch.setattr(model, "generate", spy)
    evaluation.generate(model, tokenizer, PROMPTS, GREEDY, batch_size=2, progress=False)
    lengths = sorted(evaluation.prompt_lengths(tokenizer, PROMPTS), reverse=True)
    assert [shape[1] for shape, _ in widths] == lengths[::2]  # each batch padded to its own longest prompt
    assert all(shape[1] == longest for shape, longest in widths)
    assert [shape[0] for shape, _ in widths] == [2, 2, 2, 1]


def test_generate_restores_training_mode_and_accepts_empty(model, tokenizer):
    model.train()
    evaluation.generate(model, tokenizer, PROMPTS[:2], GREEDY, progress=False)
    assert model.training
    model.eval()
    assert evaluation.generate(model, tokenizer, [], GREEDY, progress=False) == []
    with pytest.raises(TypeError, match="list"):
        evaluation.generate(model, tokenizer, "a single prompt", GREEDY)


def test_generate_with_a_profile_uses_its_budget(model, tokenizer):
    profile = dataclasses.replace(get_profile("smoke"), max_new_tokens=4, eval_batch_size=3)
    outputs = evaluation.generate(model, tokenizer, PROMPTS, profile, progress=False)
    assert outputs == evaluation.generate(model, tokenizer, PROMPTS, evaluation.generation_config(profile),
                                          batch_size=1, progress=False)
    assert max(len(o.split()) for o in outputs) == 4  # word-level tokenizer: one word per new token


def test_prompt_lengths_count_special_tokens(tokenizer):
    assert evaluation.prompt_lengths(tokenizer, ["a b", "hello how are you"]) == [3, 5]


def test_too_long_prompt_is_an_error_unless_truncation_is_asked(model, tokenizer):
    with pytest.raises(evaluation.PromptTooLongError, match=r"#2 \(9 tokens\).*truncate=True") as info:
        evaluation.generate(model, tokenizer, PROMPTS, GREEDY, max_source_length=6, progress=False)
    assert info.value.too_long == [(2, 9), (4, 7)]
    outputs = evaluation.generate(model, tokenizer, PROMPTS, GREEDY, max_source_length=6, truncate=True,
                                  progress=False)
    cut = evaluation.generate(model, tokenizer, ["summarize the following ... bye"], GREEDY, progress=False)
    assert len(outputs) == len(PROMPTS) and outputs[2] == cut[0]  # the course's rule: start, "...", end


SAVED_MODEL_PROMPTS = [
    "Summarize the following conversation.\n\n#Person1#: I want to buy a pen, please.\n#Person2#: Here is "
    "the pen.\n\nSummary:",
    "Is this review negative or positive? Great app, but it crashes.",
    "Give a title: the battery dies after an hour.",
    "apple",
    "thanks and please here is a map of the hat",
]


def check_saved_model(folder):
    """Load a saved model as the notebooks do; batched generation must equal one-by-one generation."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    saved = AutoModelForSeq2SeqLM.from_pretrained(folder)
    config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=12)
    batched = evaluation.generate(saved, tok, SAVED_MODEL_PROMPTS, config, batch_size=2, progress=False)
    alone = [evaluation.generate(saved, tok, [p], config, progress=False)[0] for p in SAVED_MODEL_PROMPTS]
    assert batched == alone


def test_saved_micro_t5_batched_equals_one_by_one(micro_model_dir):
    check_saved_model(micro_model_dir)


@pytest.mark.skipif(not (TINY_MODEL_DIR / "config.json").exists(), reason="tiny model not built yet")
def test_tiny_flan_batched_equals_one_by_one():
    check_saved_model(TINY_MODEL_DIR)


# --------------------------------------------------------------------------------------------------
# Bootstrap and ROUGE summaries
# --------------------------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_contains_the_mean():
    values = np.random.default_rng(1).uniform(size=200)
    first = evaluation.bootstrap_ci(values, seed=3)
    assert first == evaluation.bootstrap_ci(values, seed=3)
    assert first != evaluation.bootstrap_ci(values, seed=4)
    assert first[0] < values.mean() < first[1]
    narrow = evaluation.bootstrap_ci(np.tile(values, 10), seed=3)
    assert narrow[1] - narrow[0] < (first[1] - first[0]) / 2  # 10x the data: about 1/sqrt(10) the width
    wide = evaluation.bootstrap_ci(values, seed=3, confidence=0.99)
    assert wide[0] < first[0] and wide[1] > first[1]


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        evaluation.bootstrap_ci([])
    with pytest.raises(ValueError, match="confidence"):
        evaluation.bootstrap_ci([0.1, 0.2], confidence=95)


def test_bootstrap_of_a_fair_coin_matches_the_normal_interval():
    # 200 scores, half 1: mean 0.5, standard error 0.5 / sqrt(200) = 0.0354, so 95% is 0.5 +- 0.069.
    low, high = evaluation.bootstrap_ci([0, 1] * 100, n_resamples=4000)
    assert low == pytest.approx(0.431, abs=0.006) and high == pytest.approx(0.569, abs=0.006)  # means step by 0.005


def test_bootstrap_of_a_constant_is_the_constant():
    assert evaluation.bootstrap_ci([0.37] * 50) == (pytest.approx(0.37, abs=1e-12), pytest.approx(0.37, abs=1e-12))


def test_paired_bootstrap_of_a_constant_gain_is_exact():
    b = np.linspace(0.0, 0.8, 40)
    result = evaluation.paired_bootstrap(b + 0.1, b)
    assert result["mean_diff"] == pytest.approx(0.1, abs=1e-12)
    assert (result["ci_low"], result["ci_high"]) == (pytest.approx(0.1, abs=1e-12), pytest.approx(0.1, abs=1e-12))
    assert result["p_a_better"] == 1.0
    assert evaluation.paired_bootstrap(b, b + 0.1)["p_a_better"] == 0.0


def test_paired_bootstrap_sign():
    rng = np.random.default_rng(0)
    b = rng.uniform(size=300)
    a = np.clip(b + 0.05 + rng.normal(0, 0.05, size=300), 0, 1)
    better = evaluation.paired_bootstrap(a, b)
    assert better["mean_diff"] == pytest.approx(np.mean(a - b))
    assert 0 < better["ci_low"] < better["mean_diff"] < better["ci_high"]
    assert better["p_a_better"] > 0.99
    worse = evaluation.paired_bootstrap(b, a)
    assert worse["ci_high"] < 0 and worse["p_a_better"] < 0.01
    assert evaluation.paired_bootstrap(a, b, seed=5) == evaluation.paired_bootstrap(a, b, seed=5)
    with pytest.raises(ValueError, match="same examples"):
        evaluation.paired_bootstrap(a, b[:-1])


def test_score_summaries():
    predictions = ["the cat sat on the mat", "a dog barked at night", "nothing matches"]
    references = [["the cat sat on a mat", "a cat"], "the dog barked loudly at night", ["zzz"]]
    scores = evaluation.score_summaries(predictions, references, n_resamples=200)
    per_example = evaluation.rouge_per_example(predictions, references)
    for rouge_type in evaluation.ROUGE_TYPES:
        assert scores[rouge_type] == pytest.approx(per_example[rouge_type].mean())
        assert scores[f"{rouge_type}_ci_low"] <= scores[rouge_type] <= scores[f"{rouge_type}_ci_high"]
        assert 0 <= scores[f"{rouge_type}_ci_low"] and scores[f"{rouge_type}_ci_high"] <= 1
    assert scores["n"] == 3
    assert scores["gen_len_words"] == pytest.approx((6 + 5 + 2) / 3)


# --------------------------------------------------------------------------------------------------
# Probe metrics
# --------------------------------------------------------------------------------------------------


def test_normalize_and_squad_metrics():
    assert evaluation.normalize_answer("  The Cat's   hat! ") == "cats hat"
    assert evaluation.exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert evaluation.exact_match("Paris", ["London", "paris"]) == 1.0
    assert evaluation.exact_match("Paris, France", "Paris") == 0.0
    # "cat sat on mat" vs "cat on mat": precision 3/4, recall 1
    assert evaluation.squad_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    assert evaluation.squad_f1("nine", ["at nine o'clock", "nine"]) == 1.0
    assert evaluation.squad_f1("ten", "nine") == 0.0
    assert evaluation.squad_f1("", "") == 1.0 and evaluation.squad_f1("", "nine") == 0.0


def test_accuracy_and_valid_labels():
    predictions = ["Positive", "negative.", "The movie was great", "positive"]
    labels = ["positive", "positive", "negative", "positive"]
    assert evaluation.accuracy(predictions, labels) == 0.5
    assert evaluation.valid_label_share(predictions, ["negative", "positive"]) == 0.75
    per_example = [["positive", "negative"], ["neutral"], ["the movie was great"], ["positive"]]
    assert evaluation.valid_label_share(predictions, per_example) == 0.75
    with pytest.raises(ValueError, match="must match"):
        evaluation.accuracy(predictions, labels[:2])


def test_score_probe_each_task_type():
    qa = [{"id": "1", "context": "...", "question": "when?", "answer": "at nine"},
          {"id": "2", "context": "...", "question": "who?", "answer": "Anna"}]
    result = evaluation.score_probe("qa", ["nine", "Anna"], qa)
    assert result["main_metric"] == "f1" and result["score"] == result["f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["exact_match"] == 0.5 and result["n"] == 2

    rows = Dataset.from_list([{"id": str(i), "text": "t", "label": y, "options": ["travel", "food"]}
                              for i, y in enumerate(["travel", "food", "food"])])
    result = evaluation.score_probe("topic", ["Travel", "travel", "a summary of the chat"], rows)
    assert result["main_metric"] == "accuracy" and result["score"] == pytest.approx(1 / 3)
    assert result["valid_label_share"] == pytest.approx(2 / 3)

    titles = [{"id": "1", "text": "...", "title": "Battery dies fast"}, {"id": "2", "text": "...", "title": "Love it"}]
    result = evaluation.score_probe("title", ["battery dies fast", "hate it"], titles)
    assert result["main_metric"] == "rouge1" and result["score"] == pytest.approx((1 + 0.5) / 2)
    for value in (v for k, v in result.items() if k not in ("main_metric", "n")):
        assert 0 <= value <= 1


def test_score_probe_bad_input():
    with pytest.raises(ValueError, match="Unknown probe task 'translation'. Probe tasks: qa, topic, sentiment, title"):
        evaluation.score_probe("translation", ["x"], [{"answer": "x"}])
    with pytest.raises(ValueError, match="columns"):
        evaluation.score_probe("qa", ["x"], [{"question": "q"}])
    with pytest.raises(ValueError, match="must match"):
        evaluation.score_probe("qa", ["x", "y"], [{"answer": "x"}])


# --------------------------------------------------------------------------------------------------
# Forgetting measures
# --------------------------------------------------------------------------------------------------


def test_forgetting_drop():
    drop = evaluation.forgetting_drop(0.8, 0.6)
    assert drop["absolute"] == pytest.approx(0.2) and drop["relative"] == pytest.approx(0.25)
    assert evaluation.forgetting_drop(0.5, 0.7)["absolute"] == pytest.approx(-0.2)  # improved
    assert math.isnan(evaluation.forgetting_drop(0.0, 0.0)["relative"])


def test_max_minus_final():
    assert evaluation.max_minus_final([0.5, 0.9, 0.7]) == pytest.approx(0.2)
    assert evaluation.max_minus_final([0.5, 0.6]) == pytest.approx(-0.1)  # still learning
    with pytest.raises(ValueError, match="two checkpoints"):
        evaluation.max_minus_final([0.5])


def test_forgetting_table():
    scores = {"base": {"qa": 0.8, "topic": 0.5}, "full": {"qa": 0.4, "topic": 0.5}, "lora": {"qa": 0.6, "topic": 0.4}}
    table = evaluation.forgetting_table(scores)
    assert list(table.index) == ["qa", "topic", "average"]
    assert list(table.columns) == ["base", "full", "full drop", "full rel drop", "lora", "lora drop", "lora rel drop"]
    assert table.loc["qa", "full drop"] == pytest.approx(0.4)
    assert table.loc["qa", "full rel drop"] == pytest.approx(0.5)
    assert table.loc["topic", "lora drop"] == pytest.approx(0.1)
    assert table.loc["average", "full"] == pytest.approx(0.45)
    assert table.loc["average", "full drop"] == pytest.approx(0.2)
    assert table.loc["average", "lora rel drop"] == pytest.approx(0.15 / 0.65)
    with pytest.raises(ValueError, match="base model 'original'"):
        evaluation.forgetting_table(scores, base="original")
    with pytest.raises(ValueError, match="lack scores"):
        evaluation.forgetting_table({**scores, "multi": {"qa": 0.7}})


# --- prompts that do not fit the model ---------------------------------------------------------------
def test_long_prompts_lose_their_middle_so_the_instruction_stays_whole():
    tokenizer = micro_tokenizer()
    template = templates.get_template(data.TARGET_TASK, scoring.EVAL_TEMPLATE)
    short = template.render_source({"dialogue": "#Person1#: a book.\n#Person2#: a pen."})
    long = template.render_source({"dialogue": "\n".join(f"#Person1#: a book and a pen, {i}." for i in range(200))})
    limit = 120
    with pytest.warns(UserWarning, match="1 of 2 prompts"):
        prompts, shortened = evaluation.fit_prompts([short, long], tokenizer, limit)
    assert shortened == [1]
    assert prompts[0] == short  # prompts that fit are untouched
    lengths = evaluation.prompt_lengths(tokenizer, prompts)
    assert limit - 10 <= lengths[1] <= limit  # cut just enough
    end = long[-40:]  # the dialogue's last turn and the instruction's end ("Summary:"), in the prompt's own text
    assert end.endswith("Summary:") and prompts[1].endswith(end) and evaluation.ELLIPSIS in prompts[1]
    assert prompts[1].startswith(long[:100])  # and its start


def test_a_limit_too_small_for_any_start_is_still_an_error():
    with pytest.raises(evaluation.PromptTooLongError):
        evaluation.fit_prompts(["Summarize: " + "a book " * 50], micro_tokenizer(), 3)


def test_one_rule_fits_prompts_for_training_scoring_and_the_playground(micro_model_dir, micro_profile, monkeypatch):
    """A dialogue longer than the model reads keeps "Summary:" whether it is trained on, scored or tried."""
    from datasets import Dataset

    from utils import playground, training

    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    dialogue = "\n".join(f"#Person{1 + i % 2}#: I want to buy a lamp and a pen, {i}." for i in range(60))
    prompt = playground.summary_prompt(dialogue)
    fitted = evaluation.fit_prompts([prompt], tokenizer, micro_profile.max_source_length, warn=False)[0][0]
    assert fitted != prompt and fitted.endswith("Summary:") and fitted.startswith("Summarize the following")

    trained = training.tokenize(Dataset.from_dict({"source": [prompt], "target": ["x"]}), tokenizer, micro_profile)
    assert trained["input_ids"][0] == tokenizer(fitted)["input_ids"]

    seen = []
    monkeypatch.setattr(evaluation, "generate", lambda model, tok, prompts, *a, **k: seen.extend(prompts) or [""])
    with pytest.warns(UserWarning, match="middle was cut"):
        scoring.summarize(None, tokenizer, [dialogue], micro_profile)
    assert seen == [fitted]
    assert playground.fitted_prompt(dialogue, scoring.EVAL_TEMPLATE, tokenizer, micro_profile) == fitted



def test_rouge_summary_gives_score_summaries_from_rouge_computed_once():
    predictions = ["the train leaves at nine", "dinner plans tonight", "hello"]
    references = [["the train leaves at ten"], ["dinner tonight", "plans for dinner"], ["bye"]]
    per_example = evaluation.rouge_per_example(predictions, references)
    summary = evaluation.rouge_summary(per_example, predictions, n_resamples=200)
    assert summary == evaluation.score_summaries(predictions, references, n_resamples=200)
    for rouge_type, values in per_example.items():
        assert summary[rouge_type] == pytest.approx(values.mean())
        assert (summary[f"{rouge_type}_ci_low"], summary[f"{rouge_type}_ci_high"]) == \
            evaluation.bootstrap_ci(values, n_resamples=200)
    assert summary["n"] == 3 and summary["gen_len_words"] == pytest.approx(9 / 3)


def test_score_facts_needs_one_dialogue_per_summary():
    with pytest.raises(ValueError, match="2 predictions but 1 dialogues"):
        evaluation.score_facts(["a", "b"], ["d"])
