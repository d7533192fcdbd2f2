"""training.run_cached: a trainer built in a notebook trains once, cached and resumable, as training.train would.

The run's cache key is computed from its settings and data, so a trainer that is not the course's recipe for
them must be refused (nothing written), and the recipe built by hand must train exactly what train() trains.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers
from conftest import micro_pairs
from peft import LoraConfig, TaskType, get_peft_model

from utils import modeling, training


def _build(settings, pairs, profile, eval_pairs=None, seed_adapters=True, tokens=None, **argument_changes):
    """The trainer as lesson 03 builds it, visibly: model (+ LoRA), tokenized data, collator, arguments."""
    tokenizer = modeling.load_tokenizer(settings.model)
    if seed_adapters:
        transformers.set_seed(settings.seed)
    model = modeling.load_model(settings.model)
    if settings.method == "lora":
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.SEQ_2_SEQ_LM, r=settings.lora["r"], lora_alpha=settings.lora["alpha"],
            lora_dropout=settings.lora["dropout"], target_modules=settings.lora["targets"]))
    out = training.run_dir(settings, pairs, profile, eval_data=eval_pairs)
    args = training.training_arguments(settings, out, profile, profile.n_checkpoints,
                                       evaluate=eval_pairs is not None, **argument_changes)
    return training.CourseSeq2SeqTrainer(
        model=model, args=args,
        train_dataset=tokens if tokens is not None else training.tokenize(pairs, tokenizer, profile),
        eval_dataset=training.tokenize(eval_pairs, tokenizer, profile) if eval_pairs is not None else None,
        data_collator=training.collator(tokenizer, model), processing_class=tokenizer)


def _state(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_trainer_built_by_hand_trains_what_train_trains(micro_profile, method):
    profile = dataclasses.replace(micro_profile, train_steps=6)
    pairs = micro_pairs(16)
    settings = training.RunSettings.from_profile("by_hand", method, profile)
    by_hand = training.run_cached(_build(settings, pairs, profile), settings, pairs, profile=profile)
    assert by_hand.summary["settings"]["method"] == method and training.is_finished(by_hand.path)
    trained = _state(by_hand.model)
    # train() finds the same run folder, and training it anew gives the same weights
    again = training.train("by_hand", method, pairs, profile, force=True)
    assert again.path == by_hand.path
    for name, tensor in _state(again.model).items():
        assert torch.equal(tensor, trained[name]), f"{name} differs between run_cached and train"


def test_a_finished_run_is_loaded_and_the_new_trainer_not_used(micro_profile):
    pairs = micro_pairs(8)
    profile = dataclasses.replace(micro_profile, train_steps=2)
    settings = training.RunSettings.from_profile("cached", "full", profile)
    first = training.run_cached(_build(settings, pairs, profile), settings, pairs, profile=profile)
    unused = _build(settings, pairs, profile)
    second = training.run_cached(unused, settings, pairs, profile=profile)
    assert second.path == first.path and unused.state.global_step == 0


@pytest.mark.parametrize("change, named", [
    ({"argument_changes": {"learning_rate": 0.5}}, "learning_rate"),
    ({"argument_changes": {"warmup_steps": 0}}, "warmup_steps"),
    ({"seed_adapters": False}, "fresh copy"),
    ({"truncate": True}, "'input_ids'"),
])
def test_a_trainer_that_is_not_the_recipe_is_refused_and_nothing_written(micro_profile, change, named):
    profile = dataclasses.replace(micro_profile, train_steps=4, max_source_length=20)
    pairs = micro_pairs(8)
    settings = training.RunSettings.from_profile("mismatch", "lora", profile)
    tokens = None
    if change.get("truncate"):  # the tokenizer's own truncation instead of the recipe's cut in the middle
        tokenizer = modeling.load_tokenizer(settings.model)
        tokens = pairs.map(lambda b: {**tokenizer(b["source"], max_length=20, truncation=True),
                                      "labels": tokenizer(text_target=b["target"], max_length=16,
                                                          truncation=True)["input_ids"]},
                           batched=True, remove_columns=pairs.column_names)
    torch.manual_seed(12345)  # another random state than the recipe's seed, for the unseeded adapters
    trainer = _build(settings, pairs, profile, seed_adapters=change.get("seed_adapters", True), tokens=tokens,
                     **change.get("argument_changes", {}))
    with pytest.raises(training.RecipeMismatch, match=named):
        training.run_cached(trainer, settings, pairs, profile=profile)
    out = training.run_dir(settings, pairs, profile)
    assert not training.is_finished(out) and not list(out.glob("checkpoint-*")) and trainer.state.global_step == 0


def test_lora_settings_that_disagree_with_the_model_are_refused(micro_profile):
    pairs = micro_pairs(8)
    settings = training.RunSettings.from_profile("rank", "lora", micro_profile)
    trainer = _build(dataclasses.replace(settings, lora={**settings.lora, "r": settings.lora["r"] * 2}),
                     pairs, micro_profile)
    with pytest.raises(training.RecipeMismatch, match="LoRA r"):
        training.run_cached(trainer, settings, pairs, profile=micro_profile)
