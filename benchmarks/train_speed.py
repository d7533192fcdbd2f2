"""Training, side by side: the labs' fixed 512-token padding against the course's dynamic padding.

Both ways train the same model (fresh, identical copies) on the same examples with the same batch size,
steps, optimizer and trainer; only the data handling differs:

* labs: prompts and labels padded to 512 tokens, pad tokens in the loss, random order
  (:func:`benchmarks.lab_way.lab_tokenize`);
* course: each batch padded to its own longest example, label padding set to -100 (ignored by the loss),
  examples of similar length batched together (:func:`utils.training.tokenize` and
  :func:`utils.training.collator`, ``group_by_length``).

:func:`compare_dropout` measures one more choice the same way: the course's training with FLAN-T5's dropout
(0.1) against the tiny model's (0), on the same model and examples. :func:`compare_lora` sets LoRA beside full
fine-tuning: time per step, trainable parameters, the optimizer's state and the checkpoint's size.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback, default_data_collator

from benchmarks.lab_way import LAB_MAX_LENGTH, lab_tokenize
from benchmarks.models import FLAN_T5_SMALL
from utils import evaluation, modeling, training
from utils.config import Profile


class StepClock(TrainerCallback):
    """Wall time from the start of the first training step to the end of the last one."""

    def __init__(self):
        self.started = None
        self.ended = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.started is None:
            self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.ended = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def bench_arguments(output_dir: str, steps: int, batch_size: int, learning_rate: float, seed: int,
                    group_by_length: bool) -> Seq2SeqTrainingArguments:
    """Trainer arguments shared by both ways; only the sampling order differs."""
    return Seq2SeqTrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def lab_trainer(model, tokenizer, pairs, args: Seq2SeqTrainingArguments) -> Seq2SeqTrainer:
    """THE LABS' WAY: fixed 512-token tensors, pad ids kept in the labels, the default collator."""
    return Seq2SeqTrainer(model=model, args=args, train_dataset=lab_tokenize(pairs, tokenizer),
                          data_collator=default_data_collator)


def course_trainer(model, tokenizer, pairs, args: Seq2SeqTrainingArguments, profile: Profile) -> Seq2SeqTrainer:
    """The course's way: ``utils.training``'s tokenize and collator (dynamic padding, -100 labels)."""
    return Seq2SeqTrainer(model=model, args=args, train_dataset=training.tokenize(pairs, tokenizer, profile),
                          data_collator=training.collator(tokenizer, model), processing_class=tokenizer)


def time_training(trainer) -> float:
    """Train and return the seconds spent in the training steps (set-up excluded)."""
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return clock.seconds


def padding_shares(pairs, tokenizer, max_length: int = LAB_MAX_LENGTH) -> dict:
    """How much of the labs' 512-token inputs and labels is padding, on these examples."""
    sources = [len(ids) for ids in tokenizer(list(pairs["source"]), truncation=True, max_length=max_length)["input_ids"]]
    targets = [len(ids) for ids in tokenizer(text_target=list(pairs["target"]), truncation=True,
                                             max_length=max_length)["input_ids"]]
    return {"lab_input_pad_share": 1 - float(np.mean(sources)) / max_length,
            "lab_label_pad_share": 1 - float(np.mean(targets)) / max_length,
            "mean_input_tokens": float(np.mean(sources)), "mean_label_tokens": float(np.mean(targets))}


def _first_examples(pairs, steps: int, batch_size: int):
    """Exactly ``steps * batch_size`` examples (one epoch over them), or a clear error when too few."""
    n = steps * batch_size
    if len(pairs) < n:
        raise ValueError(f"{steps} steps of batch {batch_size} need {n} examples; got {len(pairs)}.")
    return pairs.select(range(n))


def compare_training(make_model, tokenizer, pairs, profile: Profile, steps: int, batch_size: int,
                     learning_rate: float | None = None) -> dict:
    """Train ``steps`` steps both ways on the same ``steps * batch_size`` examples; examples/s and speedup.

    ``make_model()`` must return a fresh model with the same initial weights on every call.
    """
    pairs = _first_examples(pairs, steps, batch_size)
    n = len(pairs)
    learning_rate = learning_rate or profile.lr_full
    seconds = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        for way in ("lab", "course"):
            args = bench_arguments(os.path.join(scratch, way), steps, batch_size, learning_rate, profile.seed,
                                   group_by_length=way == "course")
            model = make_model()
            trainer = (lab_trainer(model, tokenizer, pairs, args) if way == "lab"
                       else course_trainer(model, tokenizer, pairs, args, profile))
            seconds[way] = time_training(trainer)
            del trainer, model
    return {
        "n_examples": n,
        "steps": steps,
        "batch_size": batch_size,
        "lab": {"seconds": seconds["lab"], "examples_per_s": n / seconds["lab"],
                "how": "inputs and labels padded to 512, pad tokens in the loss, random order"},
        "course": {"seconds": seconds["course"], "examples_per_s": n / seconds["course"],
                   "how": "dynamic padding, -100 label padding, length-grouped batches"},
        "speedup": seconds["lab"] / seconds["course"],
        **padding_shares(pairs, tokenizer),
        "load_average": [load_before, os.getloadavg()[0]],
    }


#: The dropout rate FLAN-T5's published checkpoints ship in their config.
FLAN_T5_DROPOUT = FLAN_T5_SMALL["dropout_rate"]


def compare_dropout(make_model, tokenizer, pairs, profile: Profile, steps: int, batch_size: int,
                    rates: tuple[float, float] = (FLAN_T5_DROPOUT, 0.0)) -> dict:
    """The course's training at two dropout rates (baseline first) on the same examples; examples/s, speedup.

    ``make_model(rate)`` must return a fresh model with that dropout rate and the same initial weights on
    every call. The rates are timed in the order A B B A, so a drift in the machine's speed hits both alike.
    """
    pairs = _first_examples(pairs, steps, batch_size)
    n = len(pairs)
    seconds = dict.fromkeys(rates, 0.0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-dropout-") as scratch:
        for i, rate in enumerate([*rates, *reversed(rates)]):
            args = bench_arguments(os.path.join(scratch, str(i)), steps, batch_size, profile.lr_full, profile.seed,
                                   group_by_length=True)
            seconds[rate] += time_training(course_trainer(make_model(rate), tokenizer, pairs, args, profile)) / 2
    baseline, course = rates
    return {
        "n_examples": n,
        "steps": steps,
        "batch_size": batch_size,
        "mean_input_tokens": float(np.mean(evaluation.prompt_lengths(tokenizer, pairs["source"]))),
        "baseline": {"dropout_rate": baseline, "seconds": seconds[baseline],
                     "examples_per_s": n / seconds[baseline]},
        "course": {"dropout_rate": course, "seconds": seconds[course], "examples_per_s": n / seconds[course]},
        "speedup": seconds[baseline] / seconds[course],
        "load_average": [load_before, os.getloadavg()[0]],
    }


def _optimizer_state_mb(trainer) -> float:
    """What the optimizer keeps beside the weights (AdamW: two moments per trainable parameter), in MB."""
    return sum(value.numel() * value.element_size() for state in trainer.optimizer.state.values()
               for value in state.values() if hasattr(value, "numel")) / 1e6


def compare_lora(make_model, make_lora, tokenizer, pairs, profile: Profile, steps: int, batch_size: int) -> dict:
    """Full fine-tuning against LoRA on the same model and examples (timed A B B A): seconds per step, trainable
    parameters, optimizer state and checkpoint size. ``make_lora(model)`` wraps a fresh model with adapters."""
    import peft

    pairs = _first_examples(pairs, steps, batch_size)
    seconds, facts = {"full": 0.0, "lora": 0.0}, {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as scratch:
        for i, method in enumerate(("full", "lora", "lora", "full")):
            model = make_model()
            if method == "lora":
                model = make_lora(model)
            args = bench_arguments(os.path.join(scratch, str(i)), steps, batch_size, profile.lr_full, profile.seed,
                                   group_by_length=True)
            trainer = course_trainer(model, tokenizer, pairs, args, profile)
            seconds[method] += time_training(trainer) / 2
            if method not in facts:
                saved = os.path.join(scratch, f"{method}-saved")
                model.save_pretrained(saved)
                counts = modeling.parameter_counts(model)
                facts[method] = {"trainable_parameters": counts["trainable"], "total_parameters": counts["total"],
                                 "optimizer_state_mb": _optimizer_state_mb(trainer),
                                 "checkpoint_mb": modeling.folder_size_mb(saved)}
                if isinstance(model, peft.PeftModel):
                    config = model.peft_config["default"]
                    facts[method]["lora"] = {"r": config.r, "targets": sorted(config.target_modules)}
            del trainer, model
    return {"steps": steps, "batch_size": batch_size,
            **{method: {**facts[method], "seconds_per_step": seconds[method] / steps} for method in seconds},
            "lora_time_ratio": seconds["lora"] / seconds["full"],
            "load_average": [load_before, os.getloadavg()[0]]}
