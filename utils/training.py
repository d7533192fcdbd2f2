"""Fine-tuning with lesson 03's recipe (``Seq2SeqTrainer``, LoRA through PEFT), and a cache of runs.

:func:`cached_run` keeps each run in ``results/<profile>/runs/<name>/<run_key>/``: a rerun loads it, a killed
run resumes from its last complete checkpoint. ``force=True`` deletes only what the course wrote there (the
folder is marked ``course_run.json``); a folder without the mark is refused. A finished run is in ``final/``.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import DataCollatorForSeq2Seq, GenerationConfig, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_utils import sort_checkpoints

from utils import evaluation, modeling, results
from utils.config import MAX_BATCH_SIZE, MAX_TRAIN_STEPS, Profile, SettingError, check_setting, shown_path
from utils.results import atomic_write_json, locked, read_json_object, read_sealed

METHODS = ("full", "lora")
SUMMARY_FILE = "training_summary.json"
_ELAPSED_FILE = "course_elapsed.json"  # in each checkpoint: training seconds so far
_RECIPE_VERSION = 7  # in every run's key: bump it when the recipe changes (6: fitted prompts; 7: sealed)
RESUME_ONLY_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")  # a finished run's checkpoints drop them
RUN_MARKER = "course_run.json"
SCORES_FILE = "scores.json"  # test scores ``python -m utils.train`` saves beside a run
_COURSE_FILES = ("final", "final.partial", SCORES_FILE)  # what ``force`` deletes besides the checkpoints


class RunFolderError(ValueError):
    """A run's output folder holds files the course did not write there; nothing was changed."""


class DiskFullError(OSError):
    """Saving a checkpoint or a finished run failed because the disk is full."""


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
    lora: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SettingError(f"Unknown training method {self.method!r}; use one of {METHODS}.")
        for name, low, high, kind in (("steps", 1, MAX_TRAIN_STEPS, int), ("learning_rate", 0.0, 1.0, float),
                                      ("batch_size", 1, MAX_BATCH_SIZE, int)):
            object.__setattr__(self, name, check_setting(name, getattr(self, name), low, high, kind))

    def __str__(self) -> str:
        """The settings as the dataclass writes them, with the model's folder shown relative to the course."""
        return repr(replace(self, model=shown_path(self.model)))

    @classmethod
    def from_profile(cls, name: str, method: str, profile: Profile, steps: int | None = None,
                     learning_rate: float | None = None) -> RunSettings:
        lora = ({"r": profile.lora_r, "alpha": profile.lora_alpha, "dropout": profile.lora_dropout,
                 "targets": list(profile.lora_targets)} if method == "lora" else {})
        default_lr = profile.lr_full if method == "full" else profile.lr_lora
        return cls(name=name, method=method, model=profile.model,
                   steps=profile.train_steps if steps is None else steps,
                   learning_rate=default_lr if learning_rate is None else learning_rate,
                   batch_size=profile.batch_size, seed=profile.seed, lora=lora)

    @classmethod
    def from_trainer(cls, trainer, name: str) -> RunSettings:
        """What a trainer built in a notebook will run, as settings."""
        model, args = trainer.model, trainer.args
        lora, base = {}, model.config.name_or_path
        if hasattr(model, "peft_config"):
            config = model.peft_config["default"]
            lora = {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                    "targets": sorted(config.target_modules)}
            base = config.base_model_name_or_path or base
        return cls(name=name, method="lora" if lora else "full", model=base, steps=args.max_steps,
                   learning_rate=args.learning_rate, batch_size=args.per_device_train_batch_size,
                   seed=args.seed, lora=lora)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` from ``torchrun``'s / ``accelerate``'s variables (``accelerate.PartialState()``
    says "main process" in all processes on CPUs before a trainer exists)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


#: Trainer arguments that change how a run is computed, shown or stored, not what it learns: left out of the
#: key, so a run trained on a GPU (bf16, DeepSpeed, other data loaders) is reused on a CPU.
_NOT_IN_KEY = frozenset("""
    output_dir run_name project report_to disable_tqdm log_level log_level_replica log_on_each_node
    skip_memory_metrics debug do_train do_eval do_predict resume_from_checkpoint overwrite_output_dir
    per_device_eval_batch_size eval_accumulation_steps eval_do_concat_batches eval_use_gather_object bf16
    fp16 bf16_full_eval fp16_full_eval tf32 use_cpu no_cuda torch_compile torch_compile_backend
    torch_compile_mode use_liger_kernel liger_kernel_config activation_checkpointing
    activation_checkpointing_kwargs gradient_checkpointing gradient_checkpointing_kwargs
    torch_empty_cache_steps dataloader_num_workers dataloader_pin_memory dataloader_persistent_workers
    dataloader_prefetch_factor dataloader_multiprocessing_context local_rank ddp_backend ddp_timeout
    ddp_find_unused_parameters ddp_bucket_cap_mb ddp_broadcast_buffers ddp_static_graph fsdp fsdp_config
    deepspeed parallelism_config accelerator_config save_total_limit save_on_each_node save_only_model
    save_safetensors enable_jit_checkpoint push_to_hub hub_token hub_private_repo hub_model_id
    hub_strategy hub_always_push hub_revision trackio_space_id trackio_bucket_id trackio_static_space_id
""".split())


def data_fingerprint(dataset) -> str:
    """A short hash of a data set's content, column by column (row order included)."""
    columns = getattr(dataset, "column_names", None)
    if columns is None:
        raise TypeError(f"The trainer's data is a {type(dataset).__name__}: pass a datasets.Dataset.")
    return results.digest(chunk for name in sorted(columns)
                               for chunk in (name, b"\x00", json.dumps(list(dataset[name])), b"\x01"))


def _plain(value):
    """A value as JSON can hold it: sets sorted, enums by value, anything else unknown as its text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, enum.Enum):
        return value.value
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def run_key(trainer) -> str:
    """The cache key of what ``trainer.train()`` will run: a hash of the arguments (but :data:`_NOT_IN_KEY`),
    the starting model, the data, the collator, the scoring and callbacks' ``cache_key``; not the device."""
    model, args, collator_ = trainer.model, trainer.args, trainer.data_collator
    config = {k: v for k, v in model.config.to_dict().items()
              if k not in ("_name_or_path", "transformers_version")}
    peft = ({k: v for k, v in model.peft_config["default"].to_dict().items()
             if k not in ("base_model_name_or_path", "revision")} if hasattr(model, "peft_config") else None)
    generation = getattr(model, "generation_config", None)
    generation = generation and {k: v for k, v in generation.to_dict().items() if k != "transformers_version"}
    return results.of_json(_plain({
        "arguments": {k: v for k, v in args.to_dict().items() if k not in _NOT_IN_KEY},
        "weights": modeling.weights_fingerprint(model),
        "trainable": results.digest(n for n, p in model.named_parameters() if p.requires_grad),
        "config": config, "peft": peft, "generation": generation,
        "train_data": data_fingerprint(trainer.train_dataset),
        "eval_data": None if trainer.eval_dataset is None else data_fingerprint(trainer.eval_dataset),
        "collator": [type(collator_).__name__, *(getattr(collator_, a, None) for a in
                                                 ("label_pad_token_id", "padding", "pad_to_multiple_of"))],
        "compute_metrics": trainer.compute_metrics is not None,
        "callbacks": [cb.cache_key for cb in trainer.callback_handler.callbacks if hasattr(cb, "cache_key")],
        "recipe": _RECIPE_VERSION,
    }), length=10)


def keyed_folder(trainer) -> Path:
    """Where a trainer's run is cached: ``<output_dir>/<run_key>``."""
    return Path(trainer.args.output_dir).resolve() / run_key(trainer)


def check_output(folder: str | Path, force: bool = False) -> Path:
    """``folder`` if a run may be written there: new, empty or marked as the course's (:data:`RUN_MARKER`), or
    holding a finished run to load (unless ``force``); else a :class:`RunFolderError`, nothing changed."""
    folder = Path(folder)
    if not force and is_finished(folder):
        return folder
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"The run folder {folder} is a file: give --output (output_dir) a new folder.")
    if folder.is_dir() and not (folder / RUN_MARKER).exists() and any(folder.iterdir()):
        raise RunFolderError(f"Refusing to use {folder.resolve()} as a run folder: it holds files the course "
                             f"did not write there (no {RUN_MARKER}). Give --output (output_dir) a new or "
                             "empty folder.")
    return folder


def is_finished(folder: str | Path) -> bool:
    """True when ``folder`` holds a finished run (``final/`` with its summary; never ``final.partial``)."""
    return (Path(folder) / "final" / SUMMARY_FILE).exists()


def _prepare_folder(folder: Path, force: bool, main: bool) -> tuple[Path | None, float]:
    """The checkpoint to resume from (or None) and the seconds before it; the main process marks the folder as
    the course's and deletes later checkpoints (with ``force``: all the course wrote there, nothing else)."""
    resume = None if force else last_checkpoint(folder)
    if main:
        stale = [path for step, path in checkpoints(folder) if resume is None or step > _step(resume)]
        if force and folder.is_dir():
            stale += [path for path in folder.iterdir() if path.name in _COURSE_FILES]
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / RUN_MARKER).exists():
            atomic_write_json(folder / RUN_MARKER, {"made_by": "utils.training.train", "note": "force=True / "
                              "--force deletes only checkpoint-*/, final/ and the course's own files here"})
    elapsed = resume / _ELAPSED_FILE if resume else None
    return resume, json.loads(elapsed.read_text())["seconds"] if elapsed and elapsed.exists() else 0.0


def tokenize(dataset, tokenizer, profile: Profile):
    """``source``/``target`` as ``input_ids``, ``attention_mask``, ``labels`` and ``length``, unpadded; long
    prompts fitted by :func:`utils.evaluation.fit_prompts`, targets cut at ``max_target_length``."""

    def encode(batch):
        prompts = evaluation.fit_prompts(batch["source"], tokenizer, profile.max_source_length)[0]
        sources = tokenizer(prompts, verbose=False)["input_ids"]
        labels = tokenizer(text_target=batch["target"], max_length=profile.max_target_length,
                           truncation=True)["input_ids"]
        return {"input_ids": sources, "attention_mask": [[1] * len(ids) for ids in sources],
                "labels": labels, "length": [len(ids) for ids in sources]}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Tokenizing")


def collator(tokenizer, model):
    """Pads each batch to its longest example, labels with -100 (ignored by the loss)."""
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)


def precision() -> str:
    """``bf16`` on a GPU that computes it natively (compute capability >= 8.0), else ``fp32``: never fp16 (T5
    overflows it to NaN), nor T4's and V100's emulated bf16 (``torch.cuda.is_bf16_supported()`` counts it)."""
    native = torch.cuda.is_available() and tuple(torch.cuda.get_device_capability()) >= (8, 0)
    return "bf16" if native else "fp32"


def training_arguments(settings: RunSettings, output_dir: Path, profile: Profile, n_checkpoints: int,
                       evaluate: bool, **overrides) -> transformers.Seq2SeqTrainingArguments:
    """The trainer's arguments as lesson 03 writes them; ``overrides`` replace or add some."""
    every = max(1, settings.steps // max(1, n_checkpoints))
    generation = (GenerationConfig.from_pretrained(settings.model, **evaluation.decoding(profile))
                  if evaluate else None)
    return transformers.Seq2SeqTrainingArguments(**dict(
        output_dir=str(output_dir), max_steps=settings.steps, seed=settings.seed, data_seed=settings.seed,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=profile.eval_batch_size,
        learning_rate=settings.learning_rate, lr_scheduler_type="linear", weight_decay=0.0,
        warmup_steps=max(1, settings.steps // 20), train_sampling_strategy="group_by_length",
        logging_steps=max(1, settings.steps // 25), logging_first_step=True,
        eval_strategy="steps" if evaluate else "no", eval_steps=every,
        eval_on_start=evaluate,  # the starting point of the validation curves: the base model
        save_strategy="steps", save_steps=every, predict_with_generate=evaluate, generation_config=generation,
        report_to="none", dataloader_pin_memory=torch.cuda.is_available(), bf16=precision() == "bf16",
    ) | overrides)


def early_checkpoints(steps: int) -> list[int]:
    """Steps 5% and 12.5% into a run (step 2 at the earliest: step 1's learning rate is 0), where a run
    changes fastest: lesson 04's learning-vs-forgetting curve needs points there."""
    return sorted({max(2, round(steps * share)) for share in (0.05, 0.125)} - set(range(steps, steps + 3)))


class CheckpointAt(TrainerCallback):
    """Save a checkpoint (and validate, if the run does) at these steps too; part of :func:`run_key`."""

    def __init__(self, steps):
        self.steps = tuple(sorted({int(step) for step in steps}))
        self.cache_key = ["CheckpointAt", list(self.steps)]

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_save = True
            control.should_evaluate = args.eval_strategy != "no"
        return control


class KeepGenerationConfig(TrainerCallback):
    """Put the model's generation config back after each validation batch: transformers 5.24's ``generate``
    writes ``max_length=20`` into it, so every later validation would warn (``tests/test_cached_run.py``)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        configs = {id(m.generation_config): m.generation_config for m in (model, base)}
        self.saved = [(config, dict(vars(config))) for config in configs.values()]

    def on_prediction_step(self, args, state, control, **kwargs):
        for config, values in getattr(self, "saved", []):
            vars(config).clear()
            vars(config).update(values)


def validation_rouge(prediction, tokenizer) -> dict[str, float]:
    """The trainer's ``compute_metrics`` (lesson 03 writes it in a cell): mean ROUGE-1 and ROUGE-L."""
    decoded, references = (tokenizer.batch_decode(np.where(ids == -100, tokenizer.pad_token_id, ids),
                                                  skip_special_tokens=True)
                           for ids in (prediction.predictions, prediction.label_ids))
    scores = evaluation.rouge_per_example(decoded, references)
    return {"rouge1": float(scores["rouge1"].mean()), "rougeL": float(scores["rougeL"].mean())}


class _CheckpointUpkeep(TrainerCallback):
    """Counts training seconds across interruptions (each checkpoint records the total), and keeps AdamW's
    state in the newest checkpoint only: a third of the disk (FLAN-T5-base: 1 GB weights, 2 GB moments)."""

    def __init__(self, already: float = 0.0):
        self.already = already
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return self.already + time.perf_counter() - self.started

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:  # only the main process writes
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            atomic_write_json(folder / _ELAPSED_FILE, {"seconds": self.seconds()})
            _prune_checkpoints(args.output_dir, before=state.global_step)


@dataclass
class TrainedRun:
    """A finished run: the trained model, where it lives and what happened while it trained."""

    model: object
    path: Path
    settings: RunSettings
    summary: dict

    @property
    def log_history(self) -> list[dict]:
        """The trainer's log: training loss, validation loss and ROUGE."""
        return self.summary["log_history"]

    @property
    def trainable_fraction(self) -> float:
        return self.summary["parameters"]["trainable_fraction"]


def load_run(path: str | Path) -> TrainedRun:
    """Load a finished run from disk (a full model, or the base model plus its LoRA adapter)."""
    path = Path(path)
    final = path / "final"
    if not (final / SUMMARY_FILE).exists():
        raise FileNotFoundError(f"No finished run in {path} (no final/{SUMMARY_FILE}). Train it with "
                                "training.train(...); an interrupted run resumes where it stopped.")
    summary = read_sealed(final / SUMMARY_FILE)
    if summary is None:
        raise RunFolderError(f"{final / SUMMARY_FILE} is not the summary this run saved (edited, damaged or "
                             "older): restore it, or train the run again (force=True, or --force).")
    settings = RunSettings(**summary["settings"])
    return TrainedRun(load_checkpoint(final, settings.method, settings.model), path, settings, summary)


def load_checkpoint(folder: str | Path, method: str, base_model: str):
    """A model from a run's checkpoint folder, from safetensors (a LoRA adapter on a fresh ``base_model``)."""
    if method != "lora":
        return modeling.load_model(str(folder))
    from peft import PeftModel

    if not (Path(folder) / "adapter_model.safetensors").exists():
        raise modeling.ModelLoadError(f"No adapter_model.safetensors in {folder}: the course loads LoRA "
                                      "adapters from safetensors only. Save it with model.save_pretrained.")
    with _quiet_peft():
        return PeftModel.from_pretrained(modeling.load_model(base_model), str(folder)).eval()


@contextlib.contextmanager
def _quiet_peft():
    """Silence PEFT 0.21's deprecation warning inside transformers 5 (:data:`modeling.PEFT_DEPRECATION`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", **modeling.PEFT_DEPRECATION)
        yield


def checkpoints(path: str | Path) -> list[tuple[int, Path]]:
    """A run's checkpoints (folders named exactly ``checkpoint-<step>``) as (step, folder), in order."""
    found = [Path(folder) for folder in sort_checkpoints(str(path))] if Path(path).is_dir() else []
    return [(_step(folder), folder) for folder in found if re.fullmatch(r"checkpoint-\d+", folder.name)]


def last_checkpoint(path: str | Path) -> Path | None:
    """The latest checkpoint with a readable ``trainer_state.json`` (written last: complete), or None."""
    return next((folder for _, folder in reversed(checkpoints(path))
                 if read_json_object(folder / "trainer_state.json") is not None), None)


def history_frame(log_history: list[dict]) -> pd.DataFrame:
    """The trainer's log as a table indexed by step: ``loss``, ``eval_loss``, ``eval_rouge1``..."""
    rows = [entry for entry in log_history if "train_runtime" not in entry]
    return pd.DataFrame(rows).groupby("step").first().sort_index() if rows else pd.DataFrame()


def recipe_trainer(settings: RunSettings, train_data, profile: Profile, eval_data=None,
                   n_checkpoints: int | None = None, callbacks: list | None = None,
                   output_dir: str | Path | None = None, trainer_args: dict | None = None) -> Seq2SeqTrainer:
    """The ``Seq2SeqTrainer`` lesson 03 builds in its cells for ``settings`` (so the same :func:`run_key`);
    ``output_dir`` defaults to ``results/<profile>/runs/<settings.name>`` (the cache adds the key)."""
    _check_profile(profile)
    n_checkpoints = profile.n_checkpoints if n_checkpoints is None else n_checkpoints
    n_checkpoints = check_setting("n_checkpoints", n_checkpoints, 1, 100)
    _check_data(train_data, "train_data")
    if eval_data is not None:
        _check_data(eval_data, "eval_data")
    tokenizer = modeling.load_tokenizer(settings.model)
    transformers.set_seed(settings.seed)  # LoRA's A matrices start random: seeded, the run repeats
    model = modeling.load_model(settings.model)
    args = training_arguments(settings, output_dir or profile.results_dir / "runs" / settings.name, profile,
                              n_checkpoints, evaluate=eval_data is not None, **(trainer_args or {}))
    if settings.method == "lora":
        if args.generation_config is not None:
            model.generation_config = args.generation_config  # PEFT generates with the base model's config
        lora = settings.lora
        with _quiet_peft():
            model = modeling.add_lora(model, profile, r=lora["r"], alpha=lora["alpha"],
                                      targets=tuple(lora["targets"]), dropout=lora["dropout"])
    eval_tokens = tokenize(eval_data, tokenizer, profile) if eval_data is not None else None
    metrics = functools.partial(validation_rouge, tokenizer=tokenizer) if eval_tokens is not None else None
    callbacks = [CheckpointAt(early_checkpoints(settings.steps)), KeepGenerationConfig(), *(callbacks or [])]
    return Seq2SeqTrainer(model=model, args=args, processing_class=tokenizer, callbacks=callbacks,
                          data_collator=collator(tokenizer, model), compute_metrics=metrics,
                          train_dataset=tokenize(train_data, tokenizer, profile), eval_dataset=eval_tokens)


def train(name: str, method: str, train_data, profile: Profile, eval_data=None,
          steps: int | None = None, learning_rate: float | None = None, force: bool = False,
          n_checkpoints: int | None = None, callbacks: list | None = None,
          output_dir: str | Path | None = None, trainer_args: dict | None = None) -> TrainedRun:
    """Fine-tune a fresh copy of the profile's model (``"full"`` / ``"lora"``) with :func:`recipe_trainer`,
    or load the cached run. ``eval_data`` is scored at each checkpoint; ``output_dir`` is used as given (no
    key)."""
    _check_profile(profile)
    settings = RunSettings.from_profile(name, method, profile, steps, learning_rate)
    trainer = recipe_trainer(settings, train_data, profile, eval_data, n_checkpoints, callbacks,
                             Path(output_dir).resolve() if output_dir else None, trainer_args)
    with cached_run(trainer, force=force, keyed=output_dir is None) as run:
        if run.needs_training:
            trainer.train(resume_from_checkpoint=run.resume_from)
    return run.result


@contextlib.contextmanager
def cached_run(trainer, force: bool = False, keyed: bool = True):
    """Train a ``trainer`` once: cached by :func:`run_key` (``keyed=False``: in ``output_dir`` as given),
    resumable, locked, saved into ``final/`` when the block ends. Use it as ::

        with training.cached_run(trainer) as run:
            if run.needs_training:
                trainer.train(resume_from_checkpoint=run.resume_from)
        trained = run.result  # a TrainedRun
    """
    named = Path(trainer.args.output_dir).resolve()
    out = keyed_folder(trainer) if keyed else named
    main = world()[0] == 0  # only the main process of a multi-process run writes files
    if main:
        check_output(out, force)  # before anything is written or deleted
    # Only the main process locks (the ranks meet inside the trainer); a finished run loads unlocked.
    writes = main and (force or not is_finished(out))
    with locked(out.with_name(out.name + ".lock")) if writes else contextlib.nullcontext():
        if not force and is_finished(out):  # finished before, or by another notebook meanwhile
            print(f"Loaded the cached run from {shown_path(out)} (pass force=True to train again).")
            yield SimpleNamespace(needs_training=False, resume_from=None, result=load_run(out))
            return
        resume, seconds_before = _prepare_folder(out, force, main)
        trainer.args.output_dir = str(out)
        if resume:  # the step-0 validation is in the log already
            trainer.args.eval_on_start = False
        clock = _CheckpointUpkeep(seconds_before)
        trainer.add_callback(clock)
        settings = RunSettings.from_trainer(trainer, named.name)
        counts = modeling.parameter_counts(trainer.model)
        lora = settings.lora
        what = "Full fine-tuning" if settings.method == "full" else (
            f"LoRA (r={lora['r']}, alpha={lora['alpha']}, dropout {lora['dropout']}, on {lora['targets']})")
        print(f"{what}: {counts['trainable']:,} of {counts['total']:,} parameters train "
              f"({counts['trainable_fraction']:.2%}); {settings.steps} steps of batch {settings.batch_size}, "
              f"lr {settings.learning_rate:g}, seed {settings.seed}, {precision()}.")
        ended = resume is not None and _step(resume) >= trainer.args.max_steps
        run = SimpleNamespace(needs_training=not ended,
                              resume_from=str(resume) if resume and not ended else None)
        with _disk_space(out):
            if ended:  # the run ended there; saving it as finished failed
                print(f"{resume.name} is this run's last step (an earlier run stopped while saving it as "
                      "finished): saving it now, nothing more to train.")
                _restore_finished(trainer, resume)
            elif resume:
                print(f"Resuming from {resume.name} (an earlier run of these settings stopped there).")
            yield run
        if trainer.state.global_step < trainer.args.max_steps:
            raise RuntimeError(
                f"The trainer is at step {trainer.state.global_step} of {trainer.args.max_steps}, so nothing "
                "was saved as a finished run: in the `with training.cached_run(trainer) as run:` block, call "
                "trainer.train(resume_from_checkpoint=run.resume_from).")
        run.result = _finish(trainer, settings, out, resume, clock, counts)


def _check_profile(profile) -> None:
    """Refuse anything but a :class:`Profile` (a call with its arguments in another order fails here)."""
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be the course's Profile (config.get_profile(name)), got "
                        f"{type(profile).__name__}. The run functions take (..., train_data, profile, ...).")


def _check_data(dataset, name: str) -> None:
    """Refuse pairs that cannot train: an empty set, or one without ``source``/``target``."""
    columns = set(getattr(dataset, "column_names", None) or [])
    if not {"source", "target"} <= columns:
        raise ValueError(f"{name} needs 'source' and 'target' columns, got "
                         f"{sorted(columns) or type(dataset).__name__}: build it with apply_template.")
    if len(dataset) == 0:
        use = "train on" if name == "train_data" else "validate with (pass None to skip validation)"
        raise ValueError(f"{name} is empty: there is nothing to {use}. Check the split, filters and "
                         "COURSE_N_TRAIN.")


def _finish(trainer, settings: RunSettings, out: Path, resume: Path | None, clock: _CheckpointUpkeep,
            counts: dict) -> TrainedRun:
    """Save the model and its summary into ``out/final`` (rank 0), drop optimizer states; the run."""
    model, wall, main = trainer.model, clock.seconds(), trainer.is_world_process_zero()
    validation = sum(entry.get("eval_runtime", 0.0) for entry in trainer.state.log_history)
    summary = {
        "settings": asdict(settings), "train_seconds": wall - validation, "validation_seconds": validation,
        "wall_seconds": wall, "resumed_from": resume.name if resume else None, "parameters": counts,
        "n_train_examples": len(trainer.train_dataset), "log_history": trainer.state.log_history,
        "precision": precision(), "device": str(next(model.parameters()).device),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    tokenizer = trainer.processing_class or modeling.load_tokenizer(settings.model)
    staging = out / "final.partial"  # renamed to final/ once complete
    with _disk_space(out):
        if staging.exists() and main:
            shutil.rmtree(staging)
        trainer.save_model(str(staging))  # every process calls it (DeepSpeed, FSDP gather); rank 0 writes
        if main:
            (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; the summary has the settings
            tokenizer.save_pretrained(staging)
            summary["checkpoint_mb"] = modeling.folder_size_mb(staging)
            atomic_write_json(staging / SUMMARY_FILE, summary, sealed=True)
            staging.rename(out / "final")
            summary = read_sealed(out / "final" / SUMMARY_FILE)  # as saved (rounded), as a cached run has it
    if main:
        _prune_checkpoints(out)
        scored = (f" ({validation:.0f} s of it scoring validation dialogues)"
                  if trainer.eval_dataset is not None else "")
        print(f"Trained in {wall:.0f} s{scored}; saved to {shown_path(out)}.")
    return TrainedRun(model=model.eval(), path=out, settings=settings, summary=summary)


def _step(checkpoint: Path) -> int:
    """The step of a ``checkpoint-<step>`` folder."""
    return int(checkpoint.name.split("-")[-1])


def _restore_finished(trainer, checkpoint: Path) -> None:
    """Put ``trainer`` back as it ended at its last ``checkpoint``, closing the log as ``train()`` does."""
    trainer._load_from_checkpoint(str(checkpoint))
    state = trainer.state = transformers.TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    logged, covered, total = [e for e in state.log_history if "loss" in e], 0, 0.0
    for entry in logged:
        total, covered = total + entry["loss"] * (entry["step"] - covered), entry["step"]
    state.log_history.append({"epoch": state.epoch, "step": state.global_step,
                              "train_loss": total / covered if covered else float("nan"),
                              "total_flos": state.total_flos})


@contextlib.contextmanager
def _disk_space(folder: Path):
    """Turn a save that failed for want of disk space into a :class:`DiskFullError` saying what to do."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        # How the libraries word a full disk when they do not pass ENOSPC on (torch: a short write).
        if not any(getattr(e, "errno", None) == errno.ENOSPC or "No space left on device" in str(e)
                   or "unexpected pos" in str(e) for e in (error, error.__cause__, error.__context__)):
            raise
        free = shutil.disk_usage(folder).free / 2**20 if folder.exists() else float("nan")
        raise DiskFullError(errno.ENOSPC, f"The disk is full: saving the run in {shown_path(folder)} failed "
                            f"({free:.0f} MB free; the library said: {str(error)[:120]}). Free some space "
                            f"(delete old runs from {shown_path(folder.parent)}) and run the same cell or "
                            "command again: training resumes from the last complete checkpoint.") from error


def _prune_checkpoints(out: str | Path, before: float = float("inf")) -> None:
    """Drop :data:`RESUME_ONLY_FILES` from a run's checkpoints before step ``before``."""
    for folder in [folder for step, folder in checkpoints(out) if step < before]:
        for name in RESUME_ONLY_FILES:
            (folder / name).unlink(missing_ok=True)
