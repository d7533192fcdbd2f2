"""``make bench``: the course's ways against the reference labs' ways, side by side, in one process.

    python -m benchmarks.run                         # everything (the course runs only if it changed)
    python -m benchmarks.run --only generation       # one part; the other figures are kept
    python -m benchmarks.run --only dropout          # what dropout costs the course's training
    python -m benchmarks.run --only lora             # LoRA beside full fine-tuning: time, optimizer state, size
    python -m benchmarks.run --course run            # measure the course again even if nothing changed

Figures go to ``results/bench.json`` (``generation.speedup``, ``training.speedup``,
``*.speedup_small_size``, ``dropout.<data>``, ``course.<profile>``) and ``results/bench.md``. The machine is often shared:
run it when it is quiet (``uptime``), and compare only figures from one run.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from benchmarks import course_runs, generation, report, train_speed
from benchmarks.models import FLAN_T5_BASE, flan_t5_small_random
from utils import evaluation, finetuning, mixture, modeling
from utils.config import get_profile

PARTS = ("generation", "training", "small", "dropout", "lora", "course")
MIN_GENERATION_EXAMPLES = 200


def _model_label(model, name: str) -> str:
    return f"{Path(name).name} ({modeling.parameter_counts(model)['total'] / 1e6:.1f}M)"


def bench_generation(profile, n: int | None, small_n: int | None) -> dict:
    """Generation with the tiny model (``n`` test dialogues) and, if ``small_n``, the FLAN-T5-small shape."""
    tokenizer = modeling.load_tokenizer(profile)
    gen_config = evaluation.generation_config(profile)
    figures = {}
    if n != 0:
        prompts = generation.evaluation_prompts(profile, n)
        if len(prompts) < MIN_GENERATION_EXAMPLES:
            print(f"Note: only {len(prompts)} prompts; the benchmark is meant for >= {MIN_GENERATION_EXAMPLES}.")
        model = modeling.load_model(profile)
        print(f"Generation, tiny model: {len(prompts)} prompts ...", flush=True)
        tiny = generation.compare_generation(model, tokenizer, prompts, gen_config, profile.eval_batch_size,
                                             profile.max_source_length)
        figures.update(speedup=tiny["speedup"], tiny={"model": _model_label(model, profile.model), **tiny})
    if small_n:
        model = flan_t5_small_random(tokenizer, seed=profile.seed)
        prompts = generation.evaluation_prompts(profile, small_n)
        print(f"Generation, FLAN-T5-small shape: {len(prompts)} prompts ...", flush=True)
        small = generation.compare_generation(model, tokenizer, prompts, gen_config, profile.eval_batch_size,
                                              profile.max_source_length)
        figures.update(speedup_small_size=small["speedup"],
                       small_size={"model": _model_label(model, "FLAN-T5-small shape, random weights"), **small})
    return figures


def bench_training(profile, steps: int | None, small_steps: int | None, small_batch: int) -> dict:
    """Training with the tiny model and, if ``small_steps``, the FLAN-T5-small shape."""
    tokenizer = modeling.load_tokenizer(profile)
    pairs = finetuning.summarization_training_data(profile)
    figures = {}
    if steps:
        print(f"Training, tiny model: {steps} steps of {profile.batch_size} ...", flush=True)
        make = functools.partial(modeling.load_model, profile)
        tiny = train_speed.compare_training(make, tokenizer, pairs, profile, steps, profile.batch_size)
        figures.update(speedup=tiny["speedup"], tiny={"model": _model_label(make(), profile.model), **tiny})
    if small_steps:
        print(f"Training, FLAN-T5-small shape: {small_steps} steps of {small_batch} ...", flush=True)
        make = functools.partial(flan_t5_small_random, tokenizer, profile.seed)
        small = train_speed.compare_training(make, tokenizer, pairs, profile, small_steps, small_batch)
        figures.update(speedup_small_size=small["speedup"],
                       small_size={"model": _model_label(make(), "FLAN-T5-small shape, random weights"), **small})
    return figures


def bench_dropout(profile, steps: int) -> dict:
    """The course's training with FLAN-T5's dropout against the tiny model's, on lesson 03's single-task data
    and on lesson 05's multi-task mixture (longer prompts: few-shot exemplars, long contexts)."""
    tokenizer = modeling.load_tokenizer(profile)
    data = {"summarization": finetuning.summarization_training_data(profile),
            "mixture": mixture.build_mixture(profile)}
    make = functools.partial(modeling.load_model, profile)
    label = _model_label(make(), profile.model)
    figures = {}
    for name, pairs in data.items():
        print(f"Training with and without dropout, {name}: {steps} steps of {profile.batch_size} ...", flush=True)
        figures[name] = {"model": label, "data": name,
                         **train_speed.compare_dropout(lambda rate: make(dropout_rate=rate), tokenizer, pairs,
                                                       profile, steps, profile.batch_size)}
    return figures


def bench_lora(profile, steps: int, base_steps: int, base_batch: int) -> dict:
    """LoRA beside full fine-tuning: on the tiny model with the profile's adapters (lesson 03), and on a
    FLAN-T5-base-shaped model with the reference lab's (r=32 on q and v)."""
    from peft import LoraConfig, TaskType, get_peft_model

    tokenizer = modeling.load_tokenizer(profile)
    pairs = finetuning.summarization_training_data(profile)

    def lora(r, alpha, targets):
        return lambda model: get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=r, lora_alpha=alpha,
                                                              lora_dropout=0.05, target_modules=list(targets)))

    make = functools.partial(modeling.load_model, profile)
    print(f"LoRA and full fine-tuning, tiny model: {steps} steps of {profile.batch_size} ...", flush=True)
    figures = {"tiny": {"model": _model_label(make(), profile.model), **train_speed.compare_lora(
        make, lora(profile.lora_r, profile.lora_alpha, profile.lora_targets), tokenizer, pairs, profile, steps,
        profile.batch_size)}}
    print(f"LoRA and full fine-tuning, FLAN-T5-base shape: {base_steps} steps of {base_batch} ...", flush=True)
    make = functools.partial(flan_t5_small_random, tokenizer, profile.seed, FLAN_T5_BASE)
    figures["base_size"] = {"model": _model_label(make(), "FLAN-T5-base shape, random weights"),
                            **train_speed.compare_lora(make, lora(32, 32, ("q", "v")), tokenizer, pairs, profile,
                                                       base_steps, base_batch)}
    return figures


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="parts to run (default: all); 'small' = both benchmarks at FLAN-T5-small's size")
    parser.add_argument("--course", choices=("auto", "run", "reuse", "skip"), default="auto",
                        help="auto: measure the course unless nothing changed since the last measurement; "
                             "run: always; reuse: take results/<profile>/timings.json; skip: leave as is")
    parser.add_argument("--course-profiles", nargs="+", choices=("smoke", "tiny"), default=["smoke", "tiny"],
                        help="which course runs to measure (default: both)")
    parser.add_argument("--profile", default="tiny", help="profile whose model and data are benchmarked")
    parser.add_argument("--generation-examples", type=int, default=None,
                        help="test dialogues for the generation benchmark (default: all of them)")
    parser.add_argument("--train-steps", type=int, default=12, help="training steps, tiny model")
    parser.add_argument("--dropout-train-steps", type=int, default=20, help="training steps of each dropout run")
    parser.add_argument("--small-generation-examples", type=int, default=24)
    parser.add_argument("--small-train-steps", type=int, default=3)
    parser.add_argument("--small-batch-size", type=int, default=4)
    parser.add_argument("--lora-train-steps", type=int, default=20, help="steps of each LoRA/full run, tiny model")
    parser.add_argument("--base-train-steps", type=int, default=3, help="steps of each run, FLAN-T5-base shape")
    parser.add_argument("--base-batch-size", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    profile = get_profile(args.profile)
    figures = report.load_previous()

    def save():  # after every part, so a long run that is stopped keeps what it measured
        figures["machine"] = report.machine(profile.model)
        return report.write(figures)

    small = "small" in args.only
    if "generation" in args.only or small:
        figures.setdefault("generation", {}).update(bench_generation(
            profile, args.generation_examples if "generation" in args.only else 0,
            args.small_generation_examples if small else None))
        save()
    if "training" in args.only or small:
        figures.setdefault("training", {}).update(bench_training(
            profile, args.train_steps if "training" in args.only else None,
            args.small_train_steps if small else None, args.small_batch_size))
        save()
    if "dropout" in args.only:
        figures["dropout"] = bench_dropout(profile, args.dropout_train_steps)
        save()
    if "lora" in args.only:
        figures["lora"] = bench_lora(profile, args.lora_train_steps, args.base_train_steps, args.base_batch_size)
        save()
    failures = []
    if "course" in args.only:
        course = figures.setdefault("course", {})
        for name in args.course_profiles:
            try:
                measured = course_runs.course_figures(get_profile(name), args.course, course.get(name))
            except RuntimeError as error:  # keep the other figures; report the failure at the end
                failures.append(str(error))
                continue
            if measured:
                course[name] = measured
                save()
    json_path, md_path = save()
    print("\n" + report.markdown(figures))
    print(f"\nFigures: {json_path}\nMarkdown section: {md_path}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
