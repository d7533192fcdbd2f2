"""Fine-tuning with the field's own tools, and a cache so nothing is trained twice.

The recipe, in every profile: tokenize prompt/target pairs with ``text_target``; let
``DataCollatorForSeq2Seq`` pad each batch to its own longest example and fill label padding with -100
(ignored by the loss); train with ``Seq2SeqTrainer`` (bf16 on a GPU that supports it, fp32 otherwise,
never fp16 for T5). Each run is saved under ``results/<profile>/runs/<name>-<key>/``, where the key hashes
the settings and the data; a rerun with the same settings loads it instead of training again, and a
killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from utils import modeling
from utils.config import Profile, get_profile
from utils.results import atomic_write_json, locked

METHODS = ("full", "lora")
SUMMARY_FILE = "training_summary.json"


@dataclass(frozen=True)
class RunSettings:
    """What defines a training run; two runs with equal settings and data are the same run."""

    name: str
    method: str
    model: str
    steps: int
    learning_rate: float
    batch_size: int
    seed: int
    max_source_length: int
    max_target_length: int
    lora: dict = field(default_factory=dict)

    @classmethod
    def from_profile(cls, name: str, method: str, profile: Profile, steps: int | None = None,
                     learning_rate: float | None = None) -> RunSettings:
        if method not in METHODS:
            raise ValueError(f"Unknown training method {method!r}; use one of {METHODS}.")
        lora = {}
        if method == "lora":
            lora = {"r": profile.lora_r, "alpha": profile.lora_alpha, "dropout": profile.lora_dropout,
                    "targets": list(profile.lora_targets)}
        default_lr = profile.lr_full if method == "full" else profile.lr_lora
        return cls(name=name, method=method, model=profile.model, steps=steps or profile.train_steps,
                   learning_rate=learning_rate or default_lr, batch_size=profile.batch_size, seed=profile.seed,
                   max_source_length=profile.max_source_length, max_target_length=profile.max_target_length,
                   lora=lora)


def data_fingerprint(dataset) -> str:
    """A short hash of a prompt/target data set's content (order included)."""
    digest = hashlib.sha256()
    for source, target in zip(dataset["source"], dataset["target"], strict=True):
        digest.update(source.encode())
        digest.update(b"\x00")
        digest.update(target.encode())
        digest.update(b"\x01")
    return digest.hexdigest()[:16]


def run_dir(settings: RunSettings, train_data, profile: Profile | None = None) -> Path:
    """The folder of a run: named for people, keyed by settings and data for the cache."""
    profile = profile or get_profile()
    key_material = json.dumps(asdict(settings), sort_keys=True) + data_fingerprint(train_data)
    key = hashlib.sha256(key_material.encode()).hexdigest()[:10]
    return profile.results_dir / "runs" / f"{settings.name}-{key}"


def tokenize(dataset, tokenizer, profile: Profile | None = None):
    """Turn ``source``/``target`` columns into ``input_ids``, ``attention_mask`` and ``labels``.

    Nothing is padded here: padding happens per batch in the collator. ``length`` (input tokens) lets the
    trainer group examples of similar length.
    """
    profile = profile or get_profile()

    def encode(batch):
        encoded = tokenizer(batch["source"], text_target=batch["target"], max_length=profile.max_source_length,
                            truncation=True)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Tokenizing")


def collator(tokenizer, model):
    """Pads each batch to its longest example; label padding becomes -100 so the loss ignores it."""
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100, padding="longest")


def _precision() -> dict:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return {"bf16": True}
    return {}  # fp32; never fp16 for T5 (its activations overflow to NaN)


def training_arguments(settings: RunSettings, output_dir: Path, profile: Profile, n_checkpoints: int,
                       evaluate: bool) -> Seq2SeqTrainingArguments:
    """The trainer's arguments for a run: a step budget, checkpoints along the way, fixed seed."""
    every = max(1, settings.steps // max(1, n_checkpoints))
    return Seq2SeqTrainingArguments(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=profile.eval_batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=max(1, settings.steps // 20),
        weight_decay=0.0,
        seed=settings.seed,
        data_seed=settings.seed,
        train_sampling_strategy="group_by_length",
        logging_steps=max(1, settings.steps // 25),
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=None,
        predict_with_generate=evaluate,
        generation_max_length=None,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
        **_precision(),
    )


def _rouge_metric(tokenizer):
    from utils.evaluation import rouge_per_example

    def compute(prediction):
        predictions = prediction.predictions
        labels = prediction.label_ids
        labels = labels.copy()
        labels[labels == -100] = tokenizer.pad_token_id
        predictions = predictions.copy()
        predictions[predictions == -100] = tokenizer.pad_token_id
        decoded = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        scores = rouge_per_example(decoded, references)
        return {"rouge1": float(scores["rouge1"].mean()), "rougeL": float(scores["rougeL"].mean())}

    return compute


@dataclass
class TrainedRun:
    """A finished run: the trained model, where it lives and what happened while it trained."""

    model: object
    path: Path
    settings: RunSettings
    summary: dict

    @property
    def log_history(self) -> list[dict]:
        return self.summary["log_history"]


def load_run(path: str | Path, profile: Profile | None = None) -> TrainedRun:
    """Load a finished run from disk (a full model, or the base model plus its LoRA adapter)."""
    path = Path(path)
    final = path / "final"
    summary = json.loads((final / SUMMARY_FILE).read_text())
    settings = RunSettings(**summary["settings"])
    model = load_checkpoint(final, settings.method, settings.model)
    return TrainedRun(model=model, path=path, settings=settings, summary=summary)


def load_checkpoint(folder: str | Path, method: str, base_model: str):
    """A model from a run's checkpoint folder (final or intermediate), from safetensors only."""
    if method == "lora":
        from peft import PeftModel

        return PeftModel.from_pretrained(modeling.load_model(base_model), str(folder)).eval()
    return modeling.load_model(str(folder))


def checkpoints(path: str | Path) -> list[tuple[int, Path]]:
    """The intermediate checkpoints of a run as (step, folder), in training order."""
    found = [(int(p.name.split("-")[-1]), p) for p in Path(path).glob("checkpoint-*") if p.is_dir()]
    return sorted(found)


def train(name: str, method: str, train_data, eval_data=None, profile: Profile | None = None,
          steps: int | None = None, learning_rate: float | None = None, force: bool = False,
          n_checkpoints: int | None = None) -> TrainedRun:
    """Fine-tune a fresh copy of the profile's model on ``source``/``target`` pairs, or load the cached run.

    ``method`` is ``"full"`` (every weight trains) or ``"lora"`` (PEFT adapters only). The base model on disk
    is never modified. ``force=True`` trains again even if a finished run exists.
    """
    profile = profile or get_profile()
    settings = RunSettings.from_profile(name, method, profile, steps, learning_rate)
    out = run_dir(settings, train_data, profile)
    final = out / "final"
    with locked(out.with_name(out.name + ".lock")):  # notebooks running in parallel train a run once
        if force and out.exists():
            shutil.rmtree(out)
        if (final / SUMMARY_FILE).exists():
            print(f"Loaded the cached run from {out} (pass force=True to train again).")
            return load_run(out, profile)
        return _train(settings, out, train_data, eval_data, profile, n_checkpoints)


def _train(settings: RunSettings, out: Path, train_data, eval_data, profile: Profile,
           n_checkpoints: int | None) -> TrainedRun:
    method = settings.method
    final = out / "final"
    tokenizer = modeling.load_tokenizer(settings.model)
    model = modeling.load_model(settings.model)
    if method == "lora":
        model = modeling.add_lora(model, profile)
    counts = modeling.parameter_counts(model)
    print(f"{method}: {counts['trainable']:,} of {counts['total']:,} parameters train "
          f"({counts['trainable_fraction']:.2%}).")
    train_tokens = tokenize(train_data, tokenizer, profile)
    eval_tokens = tokenize(eval_data, tokenizer, profile) if eval_data is not None else None
    args = training_arguments(settings, out, profile, n_checkpoints or profile.n_checkpoints,
                              evaluate=eval_tokens is not None)
    from utils.evaluation import generation_config

    args.generation_config = generation_config(profile)
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_tokens,
        eval_dataset=eval_tokens,
        data_collator=collator(tokenizer, model),
        processing_class=tokenizer,
        compute_metrics=_rouge_metric(tokenizer) if eval_tokens is not None else None,
    )
    resume = get_last_checkpoint(str(out)) if out.exists() else None
    if resume:
        print(f"Resuming from {resume}.")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    summary = {
        "settings": asdict(settings),
        "train_seconds": seconds,
        "train_runtime_reported": result.metrics.get("train_runtime"),
        "resumed_from": Path(resume).name if resume else None,
        "n_train_examples": len(train_data),
        "parameters": counts,
        "log_history": trainer.state.log_history,
    }
    _save_final(model, tokenizer, final, summary)
    print(f"Trained in {seconds:.0f} s; saved to {final}.")
    return TrainedRun(model=model.eval(), path=out, settings=settings, summary=summary)


def _save_final(model, tokenizer, final: Path, summary: dict) -> None:
    """Save the trained weights (safetensors) and summary into ``final/`` atomically (rename at the end)."""
    staging = final.with_name("final.partial")
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    summary["checkpoint_mb"] = modeling.folder_size_mb(staging)
    atomic_write_json(staging / SUMMARY_FILE, summary)
    staging.rename(final)
