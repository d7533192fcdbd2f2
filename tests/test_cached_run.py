"""training.cached_run: a trainer built in a notebook trains once, cached by what it will run, resumable.

The cache key comes from the trainer itself (its arguments, model, data, collator), so the recipe built by hand
(lesson 03) and by training.train (lessons 04-06) find the same run, and any edit makes a new run.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers
from conftest import micro_pairs
from peft import LoraConfig, TaskType, get_peft_model
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer

from utils import evaluation, modeling, training


def _build(settings, pairs, profile, eval_pairs=None, seed_adapters=True, tokens=None, callbacks=None,
           **argument_changes):
    """The trainer as lesson 03 builds it, visibly: model (+ LoRA), tokenized data, collator, arguments."""
    tokenizer = modeling.load_tokenizer(settings.model)
    if seed_adapters:
        transformers.set_seed(settings.seed)
    model = modeling.load_model(settings.model)
    args = training.training_arguments(settings, profile.results_dir / "runs" / settings.name, profile,
                                       profile.n_checkpoints, evaluate=eval_pairs is not None, **argument_changes)
    if settings.method == "lora":
        model.generation_config = args.generation_config
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.SEQ_2_SEQ_LM, r=settings.lora["r"], lora_alpha=settings.lora["alpha"],
            lora_dropout=settings.lora["dropout"], target_modules=settings.lora["targets"]))
    return Seq2SeqTrainer(
        model=model, args=args,
        train_dataset=tokens if tokens is not None else training.tokenize(pairs, tokenizer, profile),
        eval_dataset=training.tokenize(eval_pairs, tokenizer, profile) if eval_pairs is not None else None,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=(lambda p: training.validation_rouge(p, tokenizer)) if eval_pairs is not None else None,
        callbacks=callbacks if callbacks is not None else [training.CheckpointAt(training.early_checkpoints(
            settings.steps)), training.KeepGenerationConfig()])


def _train(trainer, force=False):
    with training.cached_run(trainer, force=force) as run:
        if run.needs_training:
            trainer.train(resume_from_checkpoint=run.resume_from)
    return run


def _state(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_trainer_built_by_hand_trains_what_train_trains(micro_profile, method):
    profile = dataclasses.replace(micro_profile, train_steps=6)
    pairs, validation = micro_pairs(16), micro_pairs(4, seed=3)
    settings = training.RunSettings.from_profile("by_hand", method, profile)
    by_hand = _train(_build(settings, pairs, profile, validation)).result
    assert by_hand.summary["settings"]["method"] == method and training.is_finished(by_hand.path)
    assert by_hand.path.parent.name == "by_hand"  # runs/<name>/<key>
    trained = _state(by_hand.model)
    # train() finds the same run folder, and training it anew gives the same weights
    again = training.train("by_hand", method, pairs, profile, validation, force=True)
    assert again.path == by_hand.path
    for name, tensor in _state(again.model).items():
        assert torch.equal(tensor, trained[name]), f"{name} differs between the trainer built by hand and train()"
    untimed = [[{k: v for k, v in entry.items() if "runtime" not in k and "per_second" not in k} for entry in run.log_history]
               for run in (again, by_hand)]
    assert untimed[0] == untimed[1]


def test_a_finished_run_is_loaded_and_the_new_trainer_not_used(micro_profile):
    pairs = micro_pairs(8)
    profile = dataclasses.replace(micro_profile, train_steps=2)
    settings = training.RunSettings.from_profile("cached", "full", profile)
    first = _train(_build(settings, pairs, profile)).result
    unused = _build(settings, pairs, profile)
    second = _train(unused)
    assert not second.needs_training and second.result.path == first.path and unused.state.global_step == 0


@pytest.mark.parametrize("change", [
    {"argument_changes": {"learning_rate": 0.5}},
    {"argument_changes": {"warmup_steps": 0}},
    {"seed_adapters": False},
    {"truncate": True},
    {"rank": 2},
    {"callbacks": []},  # no early checkpoints: the run saves other checkpoints
])
def test_an_edited_trainer_is_another_run(micro_profile, change):
    profile = dataclasses.replace(micro_profile, train_steps=4, max_source_length=20)
    pairs = micro_pairs(8)
    settings = training.RunSettings.from_profile("edited", "lora", profile)
    recipe = training.keyed_folder(_build(settings, pairs, profile))
    tokens = None
    if change.get("truncate"):  # the tokenizer's own truncation instead of the recipe's cut in the middle
        tokenizer = modeling.load_tokenizer(settings.model)
        tokens = pairs.map(lambda b: {**tokenizer(b["source"], max_length=20, truncation=True),
                                      "labels": tokenizer(text_target=b["target"], max_length=16,
                                                          truncation=True)["input_ids"]},
                           batched=True, remove_columns=pairs.column_names)
    if "rank" in change:
        settings = dataclasses.replace(settings, lora={**settings.lora, "r": change["rank"]})
    torch.manual_seed(12345)  # another random state than the recipe's seed, for the unseeded adapters
    edited = _build(settings, pairs, profile, seed_adapters=change.get("seed_adapters", True), tokens=tokens,
                    callbacks=change.get("callbacks"), **change.get("argument_changes", {}))
    assert training.keyed_folder(edited) != recipe
    assert training.keyed_folder(_build(settings, pairs, profile, seed_adapters=change.get("seed_adapters", True),
                                        tokens=tokens, callbacks=change.get("callbacks"),
                                        **change.get("argument_changes", {}))) == training.keyed_folder(edited) \
        or "seed_adapters" in change  # unseeded adapters differ every time: each is its own run


def test_a_block_that_does_not_train_saves_nothing_as_finished(micro_profile):
    settings = training.RunSettings.from_profile("idle", "full", dataclasses.replace(micro_profile, train_steps=2))
    trainer = _build(settings, micro_pairs(8), dataclasses.replace(micro_profile, train_steps=2))
    with pytest.raises(RuntimeError, match="call trainer.train"):
        with training.cached_run(trainer):
            pass
    assert not training.is_finished(trainer.args.output_dir)


@pytest.mark.parametrize("keep", [False, True])
def test_validation_writes_max_length_into_the_models_config_unless_it_is_kept(micro_profile, keep):
    """The measured need behind training.KeepGenerationConfig (transformers 5.24): the first validation's
    ``generate`` writes ``max_length=20`` into the model's generation config, and later ``generate`` calls warn
    that both it and ``max_new_tokens`` are set (a warning transformers prints once per process)."""
    profile = dataclasses.replace(micro_profile, train_steps=4, n_checkpoints=2)
    settings = training.RunSettings.from_profile(f"keep{keep}", "full", profile)
    trainer = _build(settings, micro_pairs(8), profile, micro_pairs(4, seed=3),
                     callbacks=[training.KeepGenerationConfig()] if keep else [])
    assert trainer.model.generation_config.max_length is None
    _train(trainer)
    assert (trainer.model.generation_config.max_length is None) == keep
    assert trainer.model.generation_config.max_new_tokens == evaluation.decoding(profile)["max_new_tokens"]
