"""Write the benchmark's figures: ``results/bench.json`` and ``results/bench.md`` (a markdown section that
the README and the course report can include), and print the table."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
import transformers

from utils.config import RESULTS_DIR
from utils.course import SHARED_RUNS_STEP
from utils.results import atomic_write_json, atomic_write_text

BENCH_JSON = RESULTS_DIR / "bench.json"
BENCH_MD = RESULTS_DIR / "bench.md"
TARGETS = {"generation": 5.0, "training": 3.0}  # minimum speedups with the tiny model (issue 8)


def load_previous(path: Path = BENCH_JSON) -> dict:
    """The figures of the last benchmark run (empty when there is none), so partial runs add to them."""
    return json.loads(path.read_text()) if path.exists() else {}


def machine(model: str) -> dict:
    """Where (and with which course model) the figures were measured: they only mean something with this."""
    return {"model": model, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "load_average": list(os.getloadavg()),
            "measured_at": time.strftime("%Y-%m-%d %H:%M")}


def _speed_rows(figures: dict) -> list[str]:
    rows = []
    for kind in ("generation", "training"):
        section = figures.get(kind, {})
        for size, key in (("tiny", "speedup"), ("small_size", "speedup_small_size")):
            detail = section.get(size)
            if not detail:
                continue
            target = f">= {TARGETS[kind]:g}x" if size == "tiny" else "(realistic size)"
            rows.append(f"| {kind} | {detail['model']} | {detail['n_examples']} | "
                        f"{detail['lab']['examples_per_s']:.2f} | {detail['course']['examples_per_s']:.2f} | "
                        f"**{section[key]:.1f}x** | {target} |")
    return rows


def _dropout_rows(dropout: dict) -> list[str]:
    if not dropout:
        return []
    lines = ["| data | model | examples (mean prompt tokens) | dropout | examples/s | dropout | examples/s | speedup |",
             "|---|---|---|---|---|---|---|---|"]
    for name, d in dropout.items():
        base, course = d["baseline"], d["course"]
        lines.append(f"| {name} | {d['model']} | {d['n_examples']} ({d['mean_input_tokens']:.0f}) | "
                     f"{base['dropout_rate']:g} | {base['examples_per_s']:.2f} | {course['dropout_rate']:g} | "
                     f"{course['examples_per_s']:.2f} | **{d['speedup']:.2f}x** |")
    return lines


def _course_rows(course: dict) -> list[str]:
    profiles = [p for p in ("smoke", "tiny") if course.get(p)]
    if not profiles:
        return []
    names = sorted({name for p in profiles for name in course[p]["notebooks"]})
    lines = ["| notebook | " + " | ".join(f"`{p}` (s)" for p in profiles) + " |",
             "|---|" + "---|" * len(profiles)]
    for name in names:
        cells = [f"{course[p]['notebooks'][name]:.0f}" if name in course[p]["notebooks"] else "-" for p in profiles]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    before = [course[p]["total_s"] - sum(course[p]["notebooks"].values()) for p in profiles]  # in the total
    if any(seconds >= 0.5 for seconds in before):
        lines.append(f"| {SHARED_RUNS_STEP}, before the lessons | " + " | ".join(f"{s:.0f}" for s in before) + " |")
    totals = [f"**{course[p]['total_s'] / 60:.1f} min** (budget {course[p]['target_s'] / 60:.0f} min)"
              for p in profiles]
    lines.append("| **whole course** | " + " | ".join(totals) + " |")
    tiny = course.get("tiny") or {}
    if tiny.get("peak_memory_mb"):
        lines += ["", f"Peak memory of the `tiny` course (runner and notebook kernel together): "
                      f"**{tiny['peak_memory_mb'] / 1000:.2f} GB** (budget {tiny['memory_target_mb'] / 1000:.0f} GB; "
                      f"largest single process {tiny['peak_process_memory_mb'] / 1000:.2f} GB)."]
    sources = {course[p].get("source", "") for p in profiles}
    lines += ["", f"Source: {'; '.join(sorted(sources))}."]
    return lines


def _lora_rows(lora: dict) -> list[str]:
    """Table rows of the LoRA benchmark: one per model and method."""
    if not lora:
        return []
    rows = ["| model | method | trainable parameters | s per step (batch) | optimizer state (MB) | checkpoint (MB) |",
            "|---|---|---|---|---|---|"]
    for figures in lora.values():
        for method in ("full", "lora"):
            f = figures[method]
            what = method if method == "full" else f"LoRA r={f['lora']['r']} on {', '.join(f['lora']['targets'])}"
            rows.append(f"| {figures['model']} | {what} | {f['trainable_parameters']:,} "
                        f"({f['trainable_parameters'] / f['total_parameters']:.2%}) | {f['seconds_per_step']:.3f} "
                        f"({figures['batch_size']}) | {f['optimizer_state_mb']:.1f} | {f['checkpoint_mb']:.1f} |")
    rows += ["", "LoRA's time per step as a share of full fine-tuning's: " + ", ".join(
        f"{figures['model']} {figures['lora_time_ratio']:.2f}x" for figures in lora.values()) + "."]
    return rows


def markdown(figures: dict) -> str:
    """The ``results/bench.md`` section: the speed table, the course's run times and memory, the machine."""
    m = figures.get("machine", {})
    lines = ["## Speed and memory, measured (`make bench`)", "",
             f"Measured {m.get('measured_at', '?')} on {m.get('cpu_cores', '?')} CPU cores "
             f"({m.get('cuda') or 'no GPU'}; torch {m.get('torch', '?')}, load average "
             f"{', '.join(f'{x:.1f}' for x in m.get('load_average', []))}; the machine was shared), "
             f"course model `{m.get('model', '?')}`. "
             "The labs' way is the reference labs' (shared/REFERENCES.md): everything padded to 512 tokens, "
             "pad tokens in the loss, generation one example at a time. Same model, examples, batch size, "
             "steps and greedy decoding on both sides; the generated texts are identical.", ""]
    rows = _speed_rows(figures)
    if rows:
        lines += ["| benchmark | model | examples | labs' way (examples/s) | course (examples/s) | speedup | target |",
                  "|---|---|---|---|---|---|---|", *rows, ""]
    padding = figures.get("training", {}).get("tiny", {})
    if "lab_input_pad_share" in padding:
        lines += [f"Why: padded to 512, {padding['lab_input_pad_share']:.0%} of the labs' input positions and "
                  f"{padding['lab_label_pad_share']:.0%} of their label positions are padding (a training prompt "
                  f"has {padding['mean_input_tokens']:.0f} tokens and a summary {padding['mean_label_tokens']:.0f} "
                  "on average), and the labs' loss is computed on those pad labels too.", ""]
    dropout = _dropout_rows(figures.get("dropout", {}))
    if dropout:
        lines += ["### What dropout costs the course's training", "",
                  "The course's training (dynamic padding, length-grouped batches) of the same model on the same "
                  "examples, with FLAN-T5's dropout (0.1) and with the tiny model's (0); A B B A order.", "",
                  *dropout, ""]
    lora = _lora_rows(figures.get("lora", {}))
    if lora:
        lines += ["### LoRA beside full fine-tuning", "",
                  "The same model and examples, trained both ways (A B B A order); the optimizer's state is what "
                  "AdamW keeps beside the weights, the checkpoint what `save_pretrained` writes.", "", *lora, ""]
    course = _course_rows(figures.get("course", {}))
    if course:
        lines += ["### The course's run time and memory", "", *course, ""]
    return "\n".join(lines)


def write(figures: dict) -> tuple[Path, Path]:
    """Save ``bench.json`` and ``bench.md``; return their paths."""
    return atomic_write_json(BENCH_JSON, figures), atomic_write_text(BENCH_MD, markdown(figures))
