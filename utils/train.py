"""Train from the command line, on one process or many: the same run the notebooks train.

One process (CPU, or one GPU)::

    python -m utils.train --task dialogsum --method lora --profile tiny

Several processes on one machine, one per GPU (or 2 on a CPU, with the gloo backend), data-parallel (DDP)::

    torchrun --nproc_per_node 2 -m utils.train --task dialogsum --method full --profile smoke --output runs/ddp
    accelerate launch --num_processes 2 -m utils.train --task dialogsum --method full --output runs/ddp

Each process trains on its own shard of every batch (the trainer shards the data), gradients are averaged,
and only rank 0 writes the checkpoint and the scores. ``--deepspeed ds_config.json`` or ``--fsdp`` (with
``--fsdp-config fsdp.json``) hand the same run to DeepSpeed or FSDP through the trainer.

Without ``--output`` a single-process run is saved in the course's run cache, so the notebooks load it
instead of training it again (e.g. train on a GPU machine, copy ``results/`` back). Distributed runs get
their own name (``..._x2procs``): with N processes each step sees N batches, so it is a different run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import utils
from utils import config
from utils.config import PROFILES, ProfileError, get_profile


def _decide_hub_access(argv: list[str]) -> None:
    """Take the Hub decision again for ``--profile`` when it needs the Hub and ``utils`` decided for another
    profile as it was imported (``$COURSE_PROFILE``, default tiny). The Hugging Face libraries read that decision
    once, when imported (:func:`utils.config.decide_access`), so this runs before they are."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--profile", default=None)
    name = early.parse_known_args(argv)[0].profile  # none: utils decided for $COURSE_PROFILE, which is the one
    profile = PROFILES.get((name or "").strip())
    if profile is None or profile.offline or os.environ.get(config.DECIDED_FOR, profile.name) == profile.name:
        return  # an unknown name is explained by get_profile in main(); an offline profile needs no Hub
    os.environ["COURSE_PROFILE"] = profile.name
    utils.prepare_hugging_face()


if __name__ == "__main__" or Path(sys.argv[0]).stem == "flan-course-train":  # the command, under any launcher
    _decide_hub_access(sys.argv[1:])

import torch  # noqa: E402  (the Hugging Face libraries come after the decision above)
from transformers import TrainerCallback  # noqa: E402

from utils import evaluation, finetuning, mixture, modeling, scoring, training  # noqa: E402
from utils.results import atomic_write_json  # noqa: E402

_TASKS = ("dialogsum", "multitask")


def training_data(task: str, profile, steps: int | None = None):
    """The prompt/target pairs of a task, exactly as the notebooks build them; a mixture holds only what
    ``steps`` (default: the profile's budget) will see."""
    if task == "dialogsum":
        return finetuning.summarization_training_data(profile)
    if task == "multitask":
        return mixture.build_mixture(profile, n_examples=mixture.budget_examples(profile, steps))
    raise ValueError(f"Unknown task {task!r}; use one of {_TASKS}.")


def run_name(task: str, method: str, world_size: int) -> str:
    """The run's name, as the notebooks name it (``single_task_full``, ``multitask_full``...)."""
    name = finetuning.run_name(method) if task == "dialogsum" else mixture.run_name(method)
    return name if world_size == 1 else f"{name}_x{world_size}procs"


class FirstBatchLog(TrainerCallback):
    """Prints which training examples (row numbers) each process got in its first batch.

    It shows data parallelism at work: under ``torchrun`` the processes print different rows.
    """

    def __init__(self, train_data, tokenizer, profile):
        sources = evaluation.fit_prompts(list(train_data["source"]), tokenizer, profile.max_source_length, warn=False)[0]
        self.rows: dict[tuple, list[int]] = {}
        for row, ids in enumerate(tokenizer(sources, verbose=False)["input_ids"]):  # as training.tokenize makes them
            self.rows.setdefault(tuple(ids), []).append(row)
        self.pad_id = tokenizer.pad_token_id
        self.handle = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def record(module, positional, keywords):
            input_ids, mask = keywords.get("input_ids"), keywords.get("attention_mask")
            if input_ids is not None and module.training:
                rows = [self.rows.get(tuple(ids[m.bool()].tolist()), [-1])[0]
                        for ids, m in zip(input_ids.cpu(), mask.cpu(), strict=True)]
                print(f"[rank {args.process_index} of {args.world_size}] first training batch: rows {sorted(rows)}",
                      flush=True)
                self.handle.remove()

        self.handle = model.register_forward_pre_hook(record, with_kwargs=True)


def _score(run_path: Path, task: str, profile) -> dict:
    """Load the saved run from disk and score it on the target task's test dialogues (ROUGE)."""
    run = training.load_run(run_path)
    tokenizer = modeling.load_tokenizer(str(run.path / "final"))
    scores, _ = scoring.evaluate_summarization(run.model, tokenizer, profile)
    return scores


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=_TASKS, default="dialogsum",
                        help="dialogsum: single-task summarization; multitask: the FLAN-style mixture")
    parser.add_argument("--method", choices=training.METHODS, default="full", help="full fine-tuning or LoRA")
    parser.add_argument("--profile", default=None, help="tiny, smoke or full (default: $COURSE_PROFILE or tiny)")
    parser.add_argument("--output", default=None,
                        help="run folder (default: the course's run cache under results/<profile>/runs/)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the profile's)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--no-validation", action="store_true", help="skip scoring validation dialogues while training")
    parser.add_argument("--no-score", action="store_true", help="skip scoring the test dialogues at the end")
    parser.add_argument("--force", action="store_true", help="train again even if the run exists")
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed config file (JSON), passed to the trainer")
    parser.add_argument("--fsdp", action="store_true", help="shard the model with PyTorch FSDP (via the trainer)")
    parser.add_argument("--fsdp-config", default=None, help="FSDP config file (JSON) for the trainer's fsdp_config")
    parser.add_argument("--ddp-backend", default=None, help="gloo (CPU), nccl (NVIDIA GPUs); default: automatic")
    return parser.parse_args(argv)


def trainer_overrides(args, world_size: int) -> dict:
    """Training arguments set on the command line (only those given), plus what several CPU processes need."""
    given = {"deepspeed": args.deepspeed, "fsdp": args.fsdp or None, "fsdp_config": args.fsdp_config,
             "ddp_backend": args.ddp_backend}
    overrides = {key: value for key, value in given.items() if value is not None}
    if args.fsdp and not torch.cuda.is_available():
        print("Note: FSDP shards models across GPUs; on the CPU the trainer runs plain data parallelism (DDP).")
    if world_size > 1 and not torch.cuda.is_available():
        # Without a GPU the trainer only goes distributed when told to use the CPU; gloo is the CPU backend.
        overrides.setdefault("ddp_backend", "gloo")
        overrides["use_cpu"] = True
    return overrides


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(_parse(argv))
    except (ProfileError, training.RunFolderError) as error:  # bad settings or output folder: say what to do
        print(f"error: {error}", file=sys.stderr)
        return 2


def _main(args) -> int:
    profile = get_profile(args.profile)
    rank, world_size = training.world()
    name = run_name(args.task, args.method, world_size)
    output = Path(args.output).resolve() if args.output else None
    if output is not None and rank == 0:
        training.check_output(output, args.force)  # before any data is loaded, let alone anything deleted
    train_data = training_data(args.task, profile, args.steps)
    eval_data = None if args.no_validation else finetuning.validation_pairs(profile)
    if rank == 0:
        print(f"{profile.describe()}\nTraining {name} on {world_size} process(es).", flush=True)
    tokenizer = modeling.load_tokenizer(profile)
    run = training.train(name, args.method, train_data, profile, eval_data, steps=args.steps,
                         learning_rate=args.learning_rate, force=args.force,
                         output_dir=output, trainer_args=trainer_overrides(args, world_size),
                         callbacks=[FirstBatchLog(train_data, tokenizer, profile)])
    if rank != 0:
        print(f"[rank {rank} of {world_size}] finished training; rank 0 writes the results.", flush=True)
        return 0
    result = {"task": args.task, "method": args.method, "profile": profile.name, "world_size": world_size,
              "written_by_rank": rank, "run": str(run.path)}
    if not args.no_score:
        result["test"] = _score(run.path, args.task, profile)
        print(f"ROUGE-1 on {result['test']['n']} test dialogues: {result['test']['rouge1']:.3f}")
    atomic_write_json(run.path / training.SCORES_FILE, result)
    print(json.dumps({k: v for k, v in result.items() if k != "test"}))
    print(f"Run saved in {run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
