"""The tiny FLAN-T5: the committed model loads offline, keeps T5's conventions and meets its targets;
the build's pieces (span corruption, tokenizer, quick build) work."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from utils import modeling
from utils.config import TINY_MODEL_DIR, get_profile
from utils.data import PROBES
from utils.world import tiny_flan

MAX_PARAMETERS = 10_000_000
MAX_WEIGHTS_MB = 20
MAX_FOLDER_MB = 50  # the model, its pre-trained-only checkpoint and the tokenizers (issue 14)
#: The build's budget on 2 CPU cores: issue 14's 90 minutes with the developers' guide's 2x margin. Checked on CPU
#: seconds (the build uses one thread), which do not grow when other jobs share the machine, as wall-clock seconds do.
MAX_BUILD_SECONDS = 45 * 60
PROBE_TARGET = tiny_flan.PROBE_TARGET  # 0.7: every probe a real skill (issue 14)
#: Probes allowed below PROBE_TARGET, each with the sentence of the model card that names it. QA is held back by
#: what the model cannot copy (data/models/tiny-flan-t5-trials.md, its last section); title is no longer excepted.
PROBE_EXCEPTIONS = {"qa": "Below the course's target of 0.7: qa"}
#: Zero-shot ROUGE-1 on the held-out data set: weak, as FLAN-T5-base's, but text (issue 14's band).
MIN_ZERO_SHOT_ROUGE1, MAX_ZERO_SHOT_ROUGE1 = 0.15, 0.35
MAX_TOKENS_PER_WORD = 1.4
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5", ".msgpack")


@pytest.fixture(scope="module")
def tokenizer(offline):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL_DIR)


@pytest.fixture(scope="module")
def model(offline):
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(TINY_MODEL_DIR).eval()


@pytest.fixture(scope="module")
def build_info():
    return json.loads((TINY_MODEL_DIR / tiny_flan.BUILD_INFO).read_text())


# --- the committed model ------------------------------------------------------------------------------
def test_committed_model_loads_offline_as_a_t5(model, tokenizer):
    assert model.config.model_type == "t5"
    assert type(tokenizer).__name__ == "T5Tokenizer"
    assert model.config.vocab_size == len(tokenizer)
    batch = tokenizer(["Is this review negative or positive? Great app."], return_tensors="pt")
    assert model.generate(**batch, max_new_tokens=4).shape[0] == 1


def test_tokenizer_keeps_t5_conventions(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    sentinels = tiny_flan.sentinel_ids(tokenizer)
    assert sentinels == list(range(len(tokenizer) - 1, len(tokenizer) - 101, -1))  # <extra_id_0> is last
    assert tokenizer("Hello there")["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.tokenize("<extra_id_0>") == ["<extra_id_0>"]


def test_frequent_words_are_one_piece_and_text_is_compact(tokenizer):
    """T5's vocabulary has its frequent words whole; ours too, so the corpus takes few tokens per word."""
    from utils import data

    for word in ("a", "I", "the", "you", "Summarize", "conversation", "invites"):
        assert tokenizer.tokenize(word) == [f"▁{word}"], word
    train = data.load_target(get_profile("tiny"))["train"].select(range(500))
    texts = list(train["dialogue"]) + list(train["summary"])
    n_tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    assert n_tokens / sum(len(text.split()) for text in texts) <= MAX_TOKENS_PER_WORD


def test_speaker_tags_tokenize_compactly(tokenizer):
    for tag in ("#Person1#", "#Person2#"):
        assert len(tokenizer.tokenize(f"{tag}: Hi.")) <= 4  # the tag is one piece, then ":", "Hi", "."
        assert len(tokenizer.tokenize(tag)) <= 2


def test_weights_are_safetensors_only():
    files = [p.name for p in TINY_MODEL_DIR.iterdir()]
    assert "model.safetensors" in files
    assert not [name for name in files if name.endswith(PICKLE_SUFFIXES)]
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "README.md"):
        assert name in files


def test_pretrained_only_checkpoint_is_shipped_beside_the_model(model, tokenizer):
    """The bonus notebook compares the model with its pre-trained-only self (FLAN's central comparison)."""
    from transformers import AutoModelForSeq2SeqLM

    folder = TINY_MODEL_DIR / tiny_flan.PRETRAINED_ONLY
    files = sorted(p.name for p in folder.iterdir())
    assert "model.safetensors" in files and not [name for name in files if name.endswith(PICKLE_SUFFIXES)]
    pretrained = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    assert pretrained.config.vocab_size == model.config.vocab_size == len(tokenizer)
    assert pretrained.num_parameters() == model.num_parameters()
    assert not torch.equal(pretrained.lm_head.weight, model.lm_head.weight)
    total = sum(p.stat().st_size for p in TINY_MODEL_DIR.rglob("*") if p.is_file())
    assert total <= MAX_FOLDER_MB * 2**20, f"the model folder is {total / 2**20:.1f} MB"


def test_size_limits(model):
    assert modeling.parameter_counts(model)["total"] <= MAX_PARAMETERS
    assert (TINY_MODEL_DIR / "model.safetensors").stat().st_size <= MAX_WEIGHTS_MB * 2**20


def test_is_flan_t5s_variant_gated_gelu_and_untied(model):
    config = json.loads((TINY_MODEL_DIR / "config.json").read_text())
    assert config["feed_forward_proj"] == "gated-gelu" and config["tie_word_embeddings"] is False
    assert model.config.is_gated_act
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not np.allclose(model.lm_head.weight.detach().numpy(), model.shared.weight.detach().numpy())


def test_build_info_meets_the_targets(build_info):
    assert build_info["n_parameters"] <= MAX_PARAMETERS
    assert build_info["weights_mb"] <= MAX_WEIGHTS_MB
    assert build_info["torch_threads"] == 1
    assert sum(build_info["cpu_seconds"].values()) <= MAX_BUILD_SECONDS
    scores = build_info["scores"]
    assert set(scores["probes"]) == set(PROBES)
    for probe, s in scores["probes"].items():
        if probe not in PROBE_EXCEPTIONS:
            assert s["main"] >= PROBE_TARGET, (probe, s["main"])
    zero_shot = scores["zero_shot_summarization"]
    assert MIN_ZERO_SHOT_ROUGE1 <= zero_shot["rouge1"] <= MAX_ZERO_SHOT_ROUGE1
    assert zero_shot["empty_share"] < 0.05 and zero_shot["gen_len_words"] >= tiny_flan.SENTENCE_WORDS  # sentences


def test_committed_files_are_what_the_build_writes(build_info):
    """Config and card agree with the build's settings (a hand edit of one of them would show here)."""
    config = json.loads((TINY_MODEL_DIR / "config.json").read_text())
    assert config["dropout_rate"] == build_info["config"]["dropout_rate"] == tiny_flan.BuildConfig().dropout_rate
    assert (TINY_MODEL_DIR / "README.md").read_text() == tiny_flan.model_card(build_info)


def test_card_numbers_are_the_builds(build_info):
    card = (TINY_MODEL_DIR / "README.md").read_text()
    assert f"{build_info['n_parameters']:,}" in card
    assert f"seed {build_info['seed']}" in card
    for probe, s in build_info["scores"]["probes"].items():
        assert re.search(rf"\| {probe} \| {s['main_metric']} \| {s['main']:.3f} ", card)
    assert f"{build_info['scores']['zero_shot_summarization']['rouge1']:.3f}" in card
    for phrase in PROBE_EXCEPTIONS.values():
        assert phrase in card  # each exception is explained in the card


@pytest.mark.parametrize(("words", "grounding", "said", "unsaid"), [
    (9.0, 0.5, ["writes sentences (9.0 words", "grounding 0.50"], ["shorter answers"]),
    (9.0, 0.95, ["writes sentences (9.0 words"], ["grounding", "shorter answers"]),
    (3.0, 0.5, ["shorter answers than FLAN-T5 (3.0 words", "grounding 0.50"], ["writes sentences"]),
])
def test_card_says_how_the_zero_shot_summaries_fall_short(words, grounding, said, unsaid):
    """Length and grounding are told apart: sentences that invent names are still said to invent them."""
    sentence = tiny_flan._zero_shot_behaviour({"gen_len_words": words, "grounding": grounding})
    assert all(phrase in sentence for phrase in said) and not any(phrase in sentence for phrase in unsaid)


@pytest.fixture(scope="module")
def live_scores(model, tokenizer):
    """The build's own evaluation run now on the committed model (about 10 s): the numbers to check."""
    return tiny_flan.evaluate_model(model, tokenizer, get_profile("tiny"))


def test_size_recomputed_from_the_committed_model(model, build_info):
    assert modeling.parameter_counts(model)["total"] == build_info["n_parameters"] <= MAX_PARAMETERS
    weights_mb = (TINY_MODEL_DIR / "model.safetensors").stat().st_size / 2**20
    assert weights_mb == pytest.approx(build_info["weights_mb"], abs=0.01) and weights_mb <= MAX_WEIGHTS_MB


@pytest.mark.parametrize("probe", PROBES)
def test_probe_scores_recomputed_meet_the_targets(live_scores, build_info, probe):
    live = live_scores["probes"][probe]
    recorded = build_info["scores"]["probes"][probe]
    assert live["n"] == recorded["n"]
    assert live["main"] == pytest.approx(recorded["main"], abs=0.01)  # greedy decoding: the build's number
    assert live["held_out"]["main"] == pytest.approx(recorded["held_out"]["main"], abs=0.01)
    if probe not in PROBE_EXCEPTIONS:
        assert live["main"] >= PROBE_TARGET, (probe, live["main"])


def test_zero_shot_summaries_recomputed_are_weak_but_text(live_scores, build_info):
    live = live_scores["zero_shot_summarization"]
    assert live["n_dialogues"] == build_info["scores"]["zero_shot_summarization"]["n_dialogues"]
    assert live["rouge1"] == pytest.approx(build_info["scores"]["zero_shot_summarization"]["rouge1"], abs=0.005)
    assert MIN_ZERO_SHOT_ROUGE1 <= live["rouge1"] <= MAX_ZERO_SHOT_ROUGE1
    assert live["empty_share"] < 0.05 and live["gen_len_words"] >= tiny_flan.SENTENCE_WORDS


# --- the build's pieces -------------------------------------------------------------------------------
def test_noise_mask_has_t5s_density_and_spans():
    rng = np.random.default_rng(0)
    mask = tiny_flan.random_spans_noise_mask(200, rng)
    assert mask.sum() == 30 and not mask[0]
    starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
    assert len(starts) == 10  # 30 noise tokens in spans of mean length 3
    again = tiny_flan.random_spans_noise_mask(200, np.random.default_rng(0))
    assert np.array_equal(mask, again)


def test_span_corruption_hides_spans_behind_sentinels():
    ids = [10, 11, 12, 13, 14, 15, 16]
    mask = np.array([0, 1, 1, 0, 0, 1, 0], dtype=bool)
    inputs, targets = tiny_flan.span_corrupt(ids, mask, sentinels=[99, 98], eos_id=1)
    assert inputs == [10, 99, 13, 14, 98, 16, 1]
    assert targets == [99, 11, 12, 98, 15, 1]


def test_defaults_are_the_committed_builds_settings(build_info):
    """The knobs added since the committed build default to what it did: rebuilding with the defaults remakes it."""
    defaults = dataclasses.asdict(tiny_flan.BuildConfig())
    committed = build_info["config"]
    assert {name: defaults[name] for name in committed} == committed
    off = {"embedding_lr_scale": 1.0, "pretrain_curriculum_steps": 0, "pretrain_recall_share": 0.0,
           "output_layer_init": "normal", "copy_stage_steps": "", "pretrain_random_recall_share": 0.0,
           "tune_random_recall_share": 0.0}
    assert {name: defaults[name] for name in defaults.keys() - committed.keys()}.items() >= off.items()
    for name in defaults.keys() - committed.keys() - off.keys():  # settings of a knob that is off
        assert name in ("pretrain_short_tokens", "recall_cue_tokens", "recall_answer_tokens", "copy_stage_batch_size"), name


def _pieces_tokenizer():
    return tiny_flan.train_tokenizer([" ".join(f"w{i}" for i in range(60))] * 5, vocab_size=200, n_sentinels=100)


def test_pretraining_collator_with_default_settings_makes_the_same_batches_as_before():
    """Curriculum and recall off: the collator draws the same random numbers as the committed build's did."""
    tokenizer = _pieces_tokenizer()
    features = [{"ids": list(range(3, 3 + n))} for n in (40, 25, 60, 9)]
    before = tiny_flan.SpanCorruptionCollator(tokenizer, 7, 0.15, 3.0, 0.5)  # the committed build's arguments
    now = tiny_flan.pretraining_collator(tokenizer, tiny_flan.BuildConfig())
    for _ in range(3):
        a, b = before(features), now(features)
        assert all(torch.equal(a[key], b[key]) for key in a)


def test_curriculum_gives_short_pieces_first_then_whole_ones():
    tokenizer = _pieces_tokenizer()
    cfg = dataclasses.replace(tiny_flan.BuildConfig(), pretrain_curriculum_steps=2, pretrain_short_tokens=10,
                              reconstruct_share=1.0)  # targets are the whole (windowed) texts
    collator = tiny_flan.pretraining_collator(tokenizer, cfg)
    features = [{"ids": list(range(3, 3 + n))} for n in (50, 8, 64)]
    for step in (1, 2, 3, 4):
        labels = collator(features)["labels"]
        lengths = (labels != -100).sum(1).tolist()  # text + </s>
        if step <= 2:
            assert lengths == [11, 9, 11], step  # windows of at most 10 tokens (8 stays whole)
            for row in labels:
                text = row[row != -100][:-1].tolist()
                assert text == list(range(text[0], text[0] + len(text)))  # a contiguous window of the piece
        else:
            assert lengths == [51, 9, 65], step


def test_recall_examples_ask_for_the_tokens_after_a_unique_cue():
    rng = np.random.default_rng(0)
    ids = [10, 11, 12, 13, 14, 15, 16, 17]
    for _ in range(20):
        inputs, target = tiny_flan.recall_example(ids, rng, marker=99, eos_id=1)
        assert inputs[:len(ids)] == ids and inputs[len(ids)] == 99 and inputs[-1] == 1
        cue = inputs[len(ids) + 1:-1]
        at = ids.index(cue[0]) + 2
        assert len(cue) == 2 and ids[at - 2:at] == cue and target == [*ids[at:at + 2], 1]
    assert tiny_flan.recall_example([5, 6, 5, 6, 5, 6], rng, 99, 1) is None  # no cue occurs once
    assert tiny_flan.recall_example([5, 6, 7], rng, 99, 1) is None  # too short for a cue and an answer
    for _ in range(20):  # no cue: the marker stands in the text, before the answer (the probe's task)
        inputs, target = tiny_flan.recall_example(ids, rng, marker=99, eos_id=1, cue_tokens=0)
        at = inputs.index(99)
        assert inputs[:at] + inputs[at + 1:-1] == ids and target == [*ids[at:at + 2], 1]
    tokenizer = _pieces_tokenizer()
    cfg = dataclasses.replace(tiny_flan.BuildConfig(), pretrain_recall_share=1.0)
    batch = tiny_flan.pretraining_collator(tokenizer, cfg)([{"ids": list(range(3, 43))}] * 4)
    marker = tiny_flan.sentinel_ids(tokenizer)[-1]
    assert (batch["input_ids"] == marker).sum(1).tolist() == [1] * 4
    assert ((batch["labels"] != -100).sum(1) == 3).all()  # two tokens and </s>


def _unpadded(batch: dict) -> list[tuple[list[int], list[int]]]:
    return [([t for t in inputs if t != 0], [t for t in labels if t != -100])
            for inputs, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True)]


def test_random_id_recall_in_span_corruption_is_off_by_default_and_replaces_whole_examples():
    """``pretrain_random_recall_share``: 0 leaves the batches as they were; 1 makes every example random-id recall
    with the marker in place; in between, the span-corruption examples kept are those drawn without the knob."""
    tokenizer = _pieces_tokenizer()
    marker, first_sentinel = tiny_flan.sentinel_ids(tokenizer)[-1], len(tokenizer) - tiny_flan.N_SENTINELS
    features = [{"ids": list(range(3, 3 + n))} for n in (40, 25, 60, 9, 33, 17, 50, 12)]
    cfg = tiny_flan.BuildConfig()
    assert cfg.pretrain_random_recall_share == 0.0
    plain, default = tiny_flan.SpanCorruptionCollator(tokenizer, 7, 0.15, 3.0, 0.5), tiny_flan.pretraining_collator(
        tokenizer, cfg)
    for _ in range(3):
        a, b = plain(features), default(features)
        assert all(torch.equal(a[key], b[key]) for key in a)
    every = tiny_flan.pretraining_collator(tokenizer, dataclasses.replace(cfg, pretrain_random_recall_share=1.0))
    swap = tiny_flan.RandomRecallSwap(tokenizer, 1.0, cfg.seed + 1000)  # the draws the build's seed gives (P12's)
    for _ in range(3):
        for feature, (inputs, labels) in zip(features, _unpadded(every(features)), strict=True):
            at = inputs.index(marker)
            ids = inputs[:at] + inputs[at + 1:-1]
            assert inputs.count(marker) == 1 and inputs[-1] == 1 and len(ids) == len(feature["ids"])
            assert labels == [*ids[at:at + 2], 1]  # the 2 ids after the marker, then </s>
            assert all(len(tiny_flan.SPECIAL_TOKENS) <= i < first_sentinel for i in ids)  # random ids, not the text
            assert ids != feature["ids"] and (inputs, labels) == swap(len(ids), ([], []))
    # span corruption of pieces this short never reaches <extra_id_99>
    _check_half_replaced(lambda share: tiny_flan.pretraining_collator(
        tokenizer, dataclasses.replace(cfg, pretrain_random_recall_share=share)), features, marker,
        lambda feature: len(feature["ids"]) + 2)


def _check_half_replaced(collator, features: list[dict], marker: int, input_length) -> None:
    """Share 0.5 (``collator(share)``): the same seed gives the same batches; about half the examples are random-id
    recall with inputs of ``input_length(feature)`` tokens, and each kept one is exactly that drawn at share 0."""
    without, mixed, again = collator(0.0), collator(0.5), collator(0.5)
    replaced = 0
    for _ in range(4):
        expected, got, repeat = _unpadded(without(features)), mixed(features), again(features)
        assert all(torch.equal(got[key], repeat[key]) for key in got)  # the same seed, the same batches
        for feature, want, pair in zip(features, expected, _unpadded(got), strict=True):
            if marker in pair[0]:
                replaced += 1
                assert len(pair[0]) == input_length(feature) and len(pair[1]) == 3
            else:
                assert pair == want  # a kept example is exactly the one drawn without the knob
    assert 8 <= replaced <= 4 * len(features) - 8  # about half


def test_card_names_random_id_recall_in_pretraining_only_when_the_build_used_it(build_info):
    assert "recall on random ids" not in tiny_flan.model_card(build_info)
    used = build_info | {"config": build_info["config"] | {"pretrain_random_recall_share": 0.25}}
    assert "25% of the examples are replaced by recall on random ids" in tiny_flan.model_card(used)


def _tuning_features(tokenizer) -> list[dict]:
    """Tokenized instruction examples as :func:`utils.training.tokenize` makes them (inputs end with </s>)."""
    return [{"input_ids": [*range(3, 3 + n), 1], "attention_mask": [1] * (n + 1), "labels": [*range(40, 40 + t), 1],
             "length": n + 1} for n, t in ((40, 3), (25, 1), (60, 7), (9, 2), (33, 4), (17, 1), (50, 5), (12, 2))]


def test_random_id_recall_in_instruction_tuning_is_off_by_default_and_replaces_whole_examples():
    """``tune_random_recall_share``: 0 leaves the batches as the course's collator pads them; 1 makes every example
    random-id recall, its input as long as the example's, from an RNG seeded ``seed + 2000``; in between, the
    instruction examples kept are exactly those drawn without the knob."""
    from utils import training
    from utils.config import set_seed

    tokenizer = _pieces_tokenizer()
    marker, first_sentinel = tiny_flan.sentinel_ids(tokenizer)[-1], len(tokenizer) - tiny_flan.N_SENTINELS
    cfg = tiny_flan.BuildConfig()
    assert cfg.tune_random_recall_share == 0.0
    set_seed(0)
    model = tiny_flan.make_model(tokenizer, tiny_flan.BuildConfig.quick())
    features = _tuning_features(tokenizer)
    pad, default = training.collator(tokenizer, model), tiny_flan.tuning_collator(tokenizer, model, cfg)
    keys = ("input_ids", "attention_mask", "labels")
    for _ in range(3):  # the committed build's collator: the course's padding of the three columns
        a, b = pad([{key: f[key] for key in keys} for f in features]), default(features)
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    every = tiny_flan.tuning_collator(tokenizer, model, dataclasses.replace(cfg, tune_random_recall_share=1.0))
    swap = tiny_flan.RandomRecallSwap(tokenizer, 1.0, cfg.seed + 2000)  # the draws the build's seed gives
    for _ in range(3):
        batch = every(features)
        assert batch["input_ids"].shape[1] == max(len(f["input_ids"]) for f in features)
        for row, feature, (inputs, labels) in zip(batch["attention_mask"].tolist(), features, _unpadded(batch),
                                                  strict=True):
            at = inputs.index(marker)
            ids = inputs[:at] + inputs[at + 1:-1]
            assert len(inputs) == len(feature["input_ids"]) and row == [1] * len(inputs) + [0] * (len(row) - len(inputs))
            assert inputs.count(marker) == 1 and inputs[-1] == 1 and labels == [*ids[at:at + 2], 1]
            assert all(len(tiny_flan.SPECIAL_TOKENS) <= i < first_sentinel for i in ids)  # random ids, not the text
            assert (inputs, labels) == swap(len(inputs) - 2, (feature["input_ids"], feature["labels"]))
    _check_half_replaced(lambda share: tiny_flan.tuning_collator(
        tokenizer, model, dataclasses.replace(cfg, tune_random_recall_share=share)), features, marker,
        lambda feature: len(feature["input_ids"]))


def test_card_names_random_id_recall_in_instruction_tuning_only_when_the_build_used_it(build_info):
    assert "recall on random ids" not in tiny_flan.model_card(build_info)
    used = build_info | {"config": build_info["config"] | {"tune_random_recall_share": 0.25}}
    card = tiny_flan.model_card(used)
    assert ("examples per task; 25% of the examples are replaced by recall on random ids: a sequence of random ids "
            "as long as the example's input") in card
    assert "as long as the text" not in card  # not the pre-training note


def test_card_describes_curriculum_and_recall_only_when_the_build_used_them(build_info):
    card = tiny_flan.model_card(build_info)
    assert "curriculum" not in card and "ask for recall" not in card
    used = build_info | {"config": build_info["config"] | {"pretrain_curriculum_steps": 800, "pretrain_short_tokens": 16,
                                                           "pretrain_recall_share": 0.25}}
    card = tiny_flan.model_card(used)
    assert "the first 800 steps see windows of at most 16 tokens" in card and "25% of the examples ask for recall" in card
    in_place = used | {"config": used["config"] | {"recall_cue_tokens": 0}}
    assert "with a marker inserted" in tiny_flan.model_card(in_place)


def test_copy_stage_plan_reads_runs_and_schedules():
    assert tiny_flan.copy_stage_plan("") == []
    assert tiny_flan.copy_stage_plan("1250@12+1000@40,500@128") == [[(1250, 12), (1000, 40)], [(500, 128)]]
    for bad in ("12", "0@12", "5@2", "a@b"):
        with pytest.raises(ValueError, match="copy_stage_steps"):
            tiny_flan.copy_stage_plan(bad)


def test_copy_stage_recalls_random_ids_with_the_marker_in_place_window_by_window():
    tokenizer = _pieces_tokenizer()
    marker, first_sentinel = tiny_flan.sentinel_ids(tokenizer)[-1], len(tokenizer) - tiny_flan.N_SENTINELS
    collator = tiny_flan.RandomRecallCollator(tokenizer, 7, [(2, 6), (1, 10)])
    for step, window in enumerate((6, 6, 10, 10)):  # past the plan: its last window
        batch = collator([{}] * 5)
        assert batch["input_ids"].shape == (5, window + 2)  # the ids, the marker, </s>
        for inputs, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
            at = inputs.index(marker)
            ids = inputs[:at] + inputs[at + 1:-1]
            assert inputs[-1] == 1 and len(ids) == window and labels == [*ids[at:at + 2], 1], step
            assert all(len(tiny_flan.SPECIAL_TOKENS) <= i < first_sentinel for i in ids)  # no special id, no sentinel
    first, again = (tiny_flan.RandomRecallCollator(tokenizer, 7, [(2, 6)])([{}] * 5) for _ in range(2))
    assert all(torch.equal(first[key], again[key]) for key in first)  # the same batches from the same seed


def test_copy_stage_trains_reproducibly_and_is_off_by_default(build_info):
    from utils.config import set_seed

    tokenizer = _pieces_tokenizer()
    quick = tiny_flan.BuildConfig.quick()
    set_seed(quick.seed)
    model = tiny_flan.make_model(tokenizer, quick)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert tiny_flan.copy_stage(model, tokenizer, quick) == []  # the default: no stage, no change
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    cfg = dataclasses.replace(quick, copy_stage_steps="2@6+1@10,2@12", copy_stage_batch_size=4)
    states = []
    for _ in range(2):
        set_seed(cfg.seed)
        model = tiny_flan.make_model(tokenizer, cfg)
        log = tiny_flan.copy_stage(model, tokenizer, cfg)
        assert [entry["step"] for entry in log] == [1, 2, 3, 1, 2]  # two schedules
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])  # byte-reproducible from the seed
    assert not torch.equal(states[0]["shared.weight"], before["shared.weight"])
    assert "copy stage" not in tiny_flan.model_card(build_info)
    used = build_info | {"config": build_info["config"] | {"copy_stage_steps": "1250@12+1000@40,500@128",
                                                           "copy_stage_batch_size": 64}}
    card = tiny_flan.model_card(used)
    assert "a copy stage: recall on sequences of random ids" in card
    assert "1,250 steps on 12 ids, then 1,000 steps on 40 ids; then 500 steps on 128 ids" in card


def test_tokenizer_training_follows_t5_layout():
    texts = ["#Person1#: Would you like some tea?", "#Person2#: Yes, please. I love tea."] * 50
    tokenizer = tiny_flan.train_tokenizer(texts, vocab_size=200, n_sentinels=5)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert tiny_flan.sentinel_ids(tokenizer, 5) == list(range(len(tokenizer) - 1, len(tokenizer) - 6, -1))
    assert tokenizer.decode(tokenizer("I love tea.")["input_ids"], skip_special_tokens=True) == "I love tea."


def test_tokenizer_keeps_frequent_words_whole():
    texts = ["#Person1#: I have a cat and a dog.", "#Person2#: A cat? I have a parrot."] * 5
    tokenizer = tiny_flan.train_tokenizer(texts, vocab_size=150, n_sentinels=5, min_word_count=3)
    assert tokenizer.tokenize("I have a cat.") == ["▁I", "▁have", "▁a", "▁cat", "."]
    assert tiny_flan.frequent_words(["a b a, c", "a b"], 2) == ["a", "b"]


def test_build_settings_parse_with_their_types_and_refuse_unknown_knobs():
    assert tiny_flan.parse_settings(["d_model=192", "tune_lr=2e-3", "tune_group_by_length=false", "limit=None"]) == \
        {"d_model": 192, "tune_lr": 2e-3, "tune_group_by_length": False, "limit": None}
    with pytest.raises(SystemExit, match="BuildConfig knob"):
        tiny_flan.parse_settings(["width=3"])


def test_fast_embeddings_optimizer_scales_only_the_embeddings_and_keeps_the_trainers_groups(tmp_path):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    model = tiny_flan.make_model(tiny_flan.train_tokenizer(["a small text for a small tokenizer"] * 20, 200),
                                 tiny_flan.BuildConfig.quick())
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), learning_rate=2e-3, weight_decay=0.01, report_to="none")
    trainer = Seq2SeqTrainer(model=model, args=args)
    optimizer = tiny_flan.fast_embeddings_optimizer(trainer, 10)
    default = trainer.create_optimizer()  # what the Trainer makes by itself
    assert type(optimizer) is type(default)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in default.param_groups for p in g["params"]}
    assert lr_of.keys() == decay_of.keys()  # every trained weight, once
    fast = {id(model.shared.weight), id(model.lm_head.weight)}
    for name, param in model.named_parameters():
        assert lr_of[id(param)] == (2e-2 if id(param) in fast else 2e-3, decay_of[id(param)]), name


def test_card_names_a_faster_embedding_rate_only_when_the_build_used_one(build_info):
    assert "x the learning rate" not in tiny_flan.model_card(build_info | {"config": build_info["config"] | {"embedding_lr_scale": 1}})
    faster = build_info | {"config": build_info["config"] | {"embedding_lr_scale": 30.0}}
    assert "the output layer learn at 30x the learning rate" in tiny_flan.model_card(faster)


def test_output_layer_starts_random_or_as_a_copy_of_the_input_embeddings(build_info):
    tokenizer = tiny_flan.train_tokenizer(["a small text for a small tokenizer"] * 20, 200)
    random = tiny_flan.make_model(tokenizer, tiny_flan.BuildConfig.quick())
    assert not torch.equal(random.lm_head.weight, random.shared.weight)
    copied = tiny_flan.make_model(tokenizer, dataclasses.replace(tiny_flan.BuildConfig.quick(), output_layer_init="copy"))
    assert torch.equal(copied.lm_head.weight, copied.shared.weight)  # the same values ...
    assert copied.lm_head.weight.data_ptr() != copied.shared.weight.data_ptr()  # ... in two matrices, untied
    with pytest.raises(ValueError, match="output_layer_init"):
        tiny_flan.make_model(tokenizer, dataclasses.replace(tiny_flan.BuildConfig.quick(), output_layer_init="zeros"))
    assert "starts as a copy" not in tiny_flan.model_card(build_info)
    copy_card = tiny_flan.model_card(build_info | {"config": build_info["config"] | {"output_layer_init": "copy"}})
    assert "its output layer starts as a copy of the input embeddings" in copy_card


def test_build_refuses_to_overwrite_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a model folder"):
        tiny_flan.build(tmp_path, tiny_flan.BuildConfig.quick())
    assert (tmp_path / "notes.txt").exists()


def test_quick_build_runs_end_to_end(tmp_path, offline):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    out = tmp_path / "model"
    info = tiny_flan.main(["build", "--quick", "--out", str(out), "--seed", "3"])
    assert (out / "model.safetensors").exists() and (out / "README.md").exists()
    assert json.loads((out / tiny_flan.BUILD_INFO).read_text())["seed"] == 3
    assert set(info["scores"]["probes"]) == set(PROBES)
    assert set(info["data"]["mixture"]) == set(tiny_flan.HELD_IN)  # chats held in, the target held out
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tokenizer) and model.config.feed_forward_proj == "gated-gelu"
    pretrained = AutoModelForSeq2SeqLM.from_pretrained(out / tiny_flan.PRETRAINED_ONLY)  # before instruction tuning
    assert AutoTokenizer.from_pretrained(out / tiny_flan.PRETRAINED_ONLY).get_vocab() == tokenizer.get_vocab()
    same = {"dropout_rate": 0, "_name_or_path": ""}  # the saved dropout and the folder may differ, not the shape
    assert pretrained.config.to_dict() | same == model.config.to_dict() | same
    assert not torch.equal(pretrained.shared.weight, model.shared.weight)  # instruction tuning changed the weights
