"""Train from the command line, on one process or many: the same run the notebooks train.

    python -m utils.train --task dialogsum --method lora --profile tiny
    torchrun --nproc_per_node 2 -m utils.train --method full --profile smoke --output runs/ddp

Under ``torchrun`` / ``accelerate launch`` each process trains its shard (DDP; ``--deepspeed``, ``--fsdp``),
rank 0 writes to the run cache (the notebooks load it) or ``--output``; N processes: run ``..._x<N>procs``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import utils
from utils import config


def _decide_hub_access(argv: list[str]) -> None:
    """Redo the Hub decision for ``--profile`` before the Hugging Face libraries read it (once, on import)."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--profile")
    name = early.parse_known_args(argv)[0].profile  # none: $COURSE_PROFILE, which utils decided for
    profile = config.PROFILES.get((name or "").strip())
    if profile is None or profile.offline or os.environ.get(config.DECIDED_FOR, profile.name) == profile.name:
        return  # an unknown name is explained by get_profile in main(); an offline profile needs no Hub
    os.environ["COURSE_PROFILE"] = profile.name
    utils.prepare_hugging_face()


if __name__ == "__main__" or Path(sys.argv[0]).stem == "flan-course-train":  # the command, under any launcher
    _decide_hub_access(sys.argv[1:])

import torch  # noqa: E402  (the Hugging Face libraries come after the decision above)
from transformers import TrainerCallback  # noqa: E402

from utils import evaluation, finetuning, mixture, modeling, notebook, results, scoring, training  # noqa: E402


def training_data(task: str, profile, steps: int | None = None):
    """A task's prompt/target pairs as the notebooks build them (a mixture: only what ``steps`` will see)."""
    return (finetuning.summarization_training_data(profile) if task == "dialogsum"
            else mixture.build_mixture(profile, n_examples=mixture.budget_examples(profile, steps)))


def run_name(task: str, method: str, world_size: int) -> str:
    """The run's name as the notebooks name it (``single_task_full``...), marked when distributed."""
    name = finetuning.run_name(method) if task == "dialogsum" else mixture.run_name(method)
    return name if world_size == 1 else f"{name}_x{world_size}procs"


class FirstBatchLog(TrainerCallback):
    """Prints the rows each process got in its first batch: data parallelism at work (different rows)."""

    def __init__(self, train_data, tokenizer, profile):
        sources = evaluation.fit_prompts(list(train_data["source"]), tokenizer, profile.max_source_length,
                                         warn=False)[0]
        encoded = tokenizer(sources, verbose=False)["input_ids"]  # as the trainer sees them
        self.rows = {tuple(ids): row for row, ids in reversed(list(enumerate(encoded)))}  # ids -> first row

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def record(module, positional, keywords):
            input_ids, mask = keywords.get("input_ids"), keywords.get("attention_mask")
            if input_ids is not None and module.training:
                rows = [self.rows.get(tuple(ids[m.bool()].tolist()), -1)
                        for ids, m in zip(input_ids.cpu(), mask.cpu(), strict=True)]
                print(f"[rank {args.process_index} of {args.world_size}] first training batch: "
                      f"rows {sorted(rows)}", flush=True)
                self.handle.remove()
        self.handle = model.register_forward_pre_hook(record, with_kwargs=True)


def trainer_overrides(args, world_size: int) -> dict:
    """Trainer arguments given on the command line, plus what several CPU processes need."""
    overrides = {key: getattr(args, key) for key in ("deepspeed", "fsdp", "fsdp_config", "ddp_backend")
                 if getattr(args, key) not in (None, False)}
    if args.fsdp and not torch.cuda.is_available():
        print("Note: FSDP shards models across GPUs; on the CPU the trainer runs plain data parallelism.")
    if world_size > 1 and not torch.cuda.is_available():  # the trainer goes distributed on CPUs with use_cpu
        return {"ddp_backend": "gloo", **overrides, "use_cpu": True}
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("dialogsum", "multitask"), default="dialogsum",
                        help="dialogsum: single-task summarization; multitask: the FLAN-style mixture")
    parser.add_argument("--method", choices=training.METHODS, default="full", help="full fine-tuning or LoRA")
    parser.add_argument("--profile", help="tiny, smoke or full (default: $COURSE_PROFILE or tiny)")
    parser.add_argument("--output", help="run folder (default: the run cache under results/<profile>/runs/)")
    parser.add_argument("--steps", type=int, help="training steps (default: the profile's)")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--no-validation", action="store_true", help="skip validation scoring while training")
    parser.add_argument("--no-score", action="store_true", help="skip scoring the test dialogues at the end")
    parser.add_argument("--force", action="store_true", help="train again even if the run exists")
    parser.add_argument("--deepspeed", help="DeepSpeed config file (JSON), passed to the trainer")
    parser.add_argument("--fsdp", action="store_true", help="shard the model with PyTorch FSDP (trainer)")
    parser.add_argument("--fsdp-config", help="FSDP config file (JSON) for the trainer's fsdp_config")
    parser.add_argument("--ddp-backend", help="gloo (CPU), nccl (NVIDIA GPUs); default: automatic")
    args = parser.parse_args(argv)
    notebook.quiet_libraries()  # the same messages as in a lesson (an untied T5's load note, for one)
    try:  # bad settings or output folder: say what to do
        profile = config.get_profile(args.profile)
        rank, world_size = training.world()
        name = run_name(args.task, args.method, world_size)
        output = Path(args.output).resolve() if args.output else None
        if output is not None and rank == 0:
            training.check_output(output, args.force)  # before any data is loaded, let alone anything deleted
        train_data = training_data(args.task, profile, args.steps)
        eval_data = None if args.no_validation else finetuning.validation_pairs(profile)
        if rank == 0:
            print(f"{profile.describe()}\nTraining {name} on {world_size} process(es).", flush=True)
        run = training.train(name, args.method, train_data, profile, eval_data, steps=args.steps,
                             learning_rate=args.learning_rate, force=args.force, output_dir=output,
                             trainer_args=trainer_overrides(args, world_size),
                             callbacks=[FirstBatchLog(train_data, modeling.load_tokenizer(profile), profile)])
        if rank != 0:
            print(f"[rank {rank} of {world_size}] finished training; rank 0 writes the results.", flush=True)
            return 0
        result = {"task": args.task, "method": args.method, "profile": profile.name, "world_size": world_size,
                  "written_by_rank": rank, "run": str(run.path)}
        if not args.no_score:  # the saved run, loaded from disk
            saved, tokenizer = training.load_run(run.path), modeling.load_tokenizer(str(run.path / "final"))
            result["test"] = scoring.evaluate_summarization(saved.model, tokenizer, profile)[0]
            print(f"ROUGE-1 on {result['test']['n']} test dialogues: {result['test']['rouge1']:.3f}")
        results.atomic_write_json(run.path / training.SCORES_FILE, result)
        print(json.dumps({k: v for k, v in result.items() if k != "test"}))
        print(f"Run saved in {run.path}")
        return 0
    except (config.ProfileError, training.RunFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
