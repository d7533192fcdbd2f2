"""Run the whole course headlessly (``python -m utils.course run``: ``make course``); also ``report``,
``check`` (the course targets) and ``compare`` (two runs' metrics); a finished run's slides: tools/slides.py.

Each notebook runs in order in a fresh kernel; the first failing one stops the run. ``results/<profile>/``
then holds the executed notebooks, ``metrics.json``, ``timings.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm.auto import tqdm

from utils import expectations
from utils.config import NOTEBOOK_DIR, ProfileError, device, get_profile, resolve_path_variables
from utils.results import atomic_write_json, atomic_write_text, load_metrics, read_json_object

try:  # POSIX only: on Windows the course runs without a peak-memory figure
    import resource
except ImportError:
    resource = None


class NotebookFailed(RuntimeError):
    """A notebook raised an error while the course ran it."""


class _Interrupted(RuntimeError):
    """The course run was stopped with Ctrl-C."""


#: Notebooks run after the numbered lessons, in this order (no lesson depends on them).
AFTER_LESSONS = ("bonus_how_the_tiny_model_was_made.ipynb",)
#: Set when Ctrl-C reaches the runner between notebooks (while one runs, nbclient's handler takes it).
_INTERRUPTED = threading.Event()


def course_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The lessons, in learning order: ``NN_name.ipynb`` sorted by number, then :data:`AFTER_LESSONS`."""
    lessons = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    return lessons + [folder / name for name in AFTER_LESSONS if (folder / name).is_file()]


def execute_notebook(path: Path, out_dir: Path) -> float:
    """Execute one notebook in a fresh kernel; save the executed copy to ``out_dir``; return seconds."""
    notebook, target = nbformat.read(path, as_version=4), out_dir / path.name
    bar = tqdm(total=sum(cell.cell_type == "code" for cell in notebook.cells), desc=path.stem, unit="cell")
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=lambda **_: bar.update(1))
    started = time.perf_counter()
    try:
        # The kernel's own messages (start-up warnings, shut-down chatter) go to a log, off the screen.
        with _kernel_log(out_dir.parent / "logs" / f"{path.stem}.kernel.log") as kernel_output:
            client.execute(stdout=kernel_output, stderr=kernel_output)
        if _interrupted(client):  # nbclient can end a run it was interrupted in as if it had finished
            raise KeyboardInterrupt
    except BaseException as error:  # a failing cell, a dead kernel, Ctrl-C: keep what ran
        bar.close()
        try:
            saved = atomic_write_text(target, nbformat.writes(notebook))
        except OSError as unsaved:  # only a note, so that the notebook's own error is the one shown
            print(f"(The executed notebook could not be saved to {target}: {unsaved})", file=sys.stderr)
            saved = None
        if _interrupted(client):  # Ctrl-C: the kernel was shut down, or nbclient's clean-up tripped on it
            raise KeyboardInterrupt from None
        if not isinstance(error, CellExecutionError):
            raise
        where = f"The executed notebook with the error is {saved}." if saved else ""
        raise NotebookFailed(f"{path.name} failed:\n{error}\n{where}") from error
    bar.close()
    atomic_write_text(target, nbformat.writes(notebook))
    return time.perf_counter() - started


def _kernel_log(path: Path):
    """A log file to write to (a context manager); nowhere when its folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 (the caller closes it)
    except OSError:
        return contextlib.nullcontext(subprocess.DEVNULL)


def _interrupted(client: NotebookClient) -> bool:
    """Whether Ctrl-C stopped ``client``: it reached us, or nbclient's handler left its clean-up behind."""
    cleanup = getattr(client, "_async_cleanup_kernel_future", None)
    if cleanup is not None and cleanup.done() and not cleanup.cancelled():
        cleanup.exception()  # retrieved: its double clean-up's error is nbclient's, nothing to act on
    return _INTERRUPTED.is_set() or cleanup is not None


def _not_nbclient_leftover(record: logging.LogRecord) -> bool:
    """A logging filter for after Ctrl-C: hides asyncio's report of an nbclient task failed at shut-down."""
    message = record.getMessage()
    return not (message.startswith("Task exception was never retrieved") and "NotebookClient." in message)


@contextlib.contextmanager
def _noting_interrupts():
    """Note Ctrl-C while the notebooks run."""
    def on_interrupt(signum, frame) -> None:
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: Runs beyond one lesson's time budget, trained first by a course run that includes a lesson using them (03's
#: exercise 3, 04's learning-rate grid): LoRA at full fine-tuning's rate, full at LoRA's.
SHARED_RUNS = (("lora", "lr_full"), ("full", "lr_lora"))
SHARED_RUNS_STEP = "shared runs (lesson 04's learning-rate grid)"
_SHARED_RUNS_BEFORE = ("03_", "04_")


def run_course(profile_name: str | None = None, only: list[str] | None = None) -> Path:
    """Run the notebooks (all, or those whose names start with one of ``only``); return the report's path."""
    resolve_path_variables()  # the kernels run in notebooks/: relative paths are made absolute here, once
    profile = get_profile(profile_name)
    os.environ["COURSE_PROFILE"] = profile.name  # the kernels inherit it
    out = profile.results_dir
    notebooks = [p for p in course_notebooks() if not only or any(p.name.startswith(o) for o in only)]
    if not notebooks:
        raise SystemExit(f"No notebooks match {only}; available: {[p.name for p in course_notebooks()]}")
    print(profile.describe())
    timings_path = out / "timings.json"
    timings, started = _timings(timings_path), time.perf_counter()
    go_on = (f"What was saved in {out} is intact; run the same command again to go on: finished trainings "
             "load from the cache, and an interrupted one resumes from its last checkpoint.")
    with _noting_interrupts():
        if any(path.name.startswith(_SHARED_RUNS_BEFORE) for path in notebooks):
            try:
                timings[SHARED_RUNS_STEP] = round(train_shared_runs(profile), 1)
            except KeyboardInterrupt:
                raise _Interrupted(f"Interrupted (Ctrl-C) while training the shared runs. {go_on}") from None
            atomic_write_json(timings_path, timings)
        for i, path in enumerate(notebooks, 1):
            print(f"[{i}/{len(notebooks)}] {path.name}", flush=True)
            try:
                timings[path.stem] = round(execute_notebook(path, out / "notebooks"), 1)
            except KeyboardInterrupt:
                logging.getLogger("asyncio").addFilter(_not_nbclient_leftover)
                raise _Interrupted(f"Interrupted (Ctrl-C) in {path.name}. {go_on}") from None
            atomic_write_json(timings_path, timings)
    total = time.perf_counter() - started
    print(f"Ran {len(notebooks)} notebooks in {total:.0f} s (peak memory of a kernel: {peak_memory_text()}).")
    report = _write_report(profile.name)
    print(f"Report: {report}")
    if not only:  # a partial run leaves other lessons' numbers as they were: nothing to judge
        _check_targets(profile.name)
    return report


def train_shared_runs(profile, side_by_side: bool | None = None) -> float:
    """Train (or find cached) :data:`SHARED_RUNS` with ``python -m utils.train``; the seconds it took. On a
    CPU with a core per run they train side by side, the cores split between them and no progress bars (on 2
    cores 1.4 to 1.8x sooner than one after the other: ``python -m benchmarks.shared_runs``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    side_by_side = cores >= len(SHARED_RUNS) and device() == "cpu" if side_by_side is None else side_by_side
    split = {"OMP_NUM_THREADS": str(cores // len(SHARED_RUNS)), "TQDM_DISABLE": "1"}  # two bars would garble
    env = {**os.environ, **split} if side_by_side else None
    started = time.perf_counter()

    def train(method: str, rate: str) -> None:
        print(f"Shared run: {method} at {rate} = {getattr(profile, rate):g}", flush=True)
        subprocess.run([sys.executable, "-m", "utils.train", "--task", "dialogsum", "--method", method,
                        "--profile", profile.name, "--learning-rate", repr(getattr(profile, rate)),
                        "--no-score"], check=True, stdout=subprocess.DEVNULL, env=env)

    with ThreadPoolExecutor(len(SHARED_RUNS) if side_by_side else 1) as pool:
        for run in [pool.submit(train, method, rate) for method, rate in SHARED_RUNS]:
            run.result()  # a failed run raises here; the other still finishes and is saved
    return time.perf_counter() - started


def _timings(path: Path) -> dict:
    """Seconds per notebook of earlier runs (``timings.json``); an invalid file starts afresh."""
    timings = read_json_object(path)
    if timings is None and path.exists():
        print(f"Note: {path} was not valid JSON; the run times start afresh.", file=sys.stderr)
    return timings or {}


def _check_targets(profile_name: str | None) -> None:
    """Check the profile's course targets on its ``metrics.json``; print them; raise if one is missed."""
    profile = get_profile(profile_name)
    rows = expectations.check(load_metrics(profile), profile.name)
    print("\n".join(["Course targets:", *expectations.markdown(rows, profile.name)]))
    expectations.raise_if_missed(rows)


def peak_child_memory_mb() -> float | None:
    """Peak resident memory of the largest finished child process (a kernel), in MB; None on Windows."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # macOS counts bytes, Linux KiB


def peak_memory_text() -> str:
    return "not measured on this platform" if (peak := peak_child_memory_mb()) is None else f"{peak:.0f} MB"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _flat(value, prefix: str = ""):
    """(``a.b.c``, value) for each leaf of nested dicts; lists are left out."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _flat(sub, f"{prefix}.{key}" if prefix else key)
    elif not isinstance(value, list):
        yield prefix, value


def _write_report(profile_name: str | None) -> Path:
    """``report.md``: the key tables of a course run, from ``metrics.json`` and ``timings.json``."""
    profile = get_profile(profile_name)
    metrics = load_metrics(profile)
    timings = _timings(profile.results_dir / "timings.json")
    targets = expectations.markdown(expectations.check(metrics, profile.name), profile.name)
    lines = [f"# Course report: profile `{profile.name}`", "", profile.describe(), "", *_headline(metrics),
             "## Course targets", "", *targets]
    if timings:
        lines += ["## Notebook run times", "", "| notebook | seconds |", "|---|---|"]
        lines += [f"| {name} | {secs:.1f} |" for name, secs in timings.items()]
        lines += [f"| **total** | {sum(timings.values()):.1f} |", ""]
    for section, values in metrics.items():
        lines += [f"## `{section}`", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {_fmt(val)} |" for key, val in _flat(values)] + [""]
    return atomic_write_text(profile.results_dir / "report.md", "\n".join(lines))


_HEADLINE_MEASURES = {"rouge1": "ROUGE-1", "fact_recall": "fact recall", "grounding": "grounding"}


def _headline(metrics: dict) -> list[str]:
    """The summary table on the target: each model, and lesson 01's lead baselines (``-``: not run)."""
    zero_shot, single = metrics.get("zero_shot", {}), metrics.get("single_task", {})
    rows = [("base (zero-shot)", zero_shot)] if zero_shot else []
    rows += [(f"lead-{k} (first {f'{k} utterances' if k > 1 else 'utterance'})", zero_shot[f"lead_{k}"])
             for k in (1, 2) if f"lead_{k}" in zero_shot]
    rows += [(f"single-task {method}", single[method]) for method in ("full", "lora") if method in single]
    if "multitask" in metrics:
        rows.append(("multi-task", metrics["multitask"].get("target", {})))
    if not rows:
        return []
    lines = ["## Headline: the held-out target task", "",
             "| model | " + " | ".join(_HEADLINE_MEASURES.values()) + " |",
             "|---|" + "---|" * len(_HEADLINE_MEASURES)]
    for name, scores in rows:
        cells = [_fmt(scores[key]) if key in scores else "-" for key in _HEADLINE_MEASURES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


_VOLATILE_KEY = re.compile(r"seconds|runtime|per_second|_time$|peak_memory")


def _stable(metrics: dict) -> dict:
    """``metrics`` without what measures the machine, not the model (times, throughput, memory)."""
    return {key: _stable(value) if isinstance(value, dict) else value
            for key, value in metrics.items() if not _VOLATILE_KEY.search(key)}


def metric_differences(first: dict, second: dict, prefix: str = "") -> list[str]:
    """Where two runs' stable metrics differ (empty when the runs agree exactly)."""
    first, second = _stable(first), _stable(second)
    differences = []
    for key in sorted(set(first) | set(second)):
        a, b, name = first.get(key), second.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            differences += metric_differences(a, b, f"{name}.")
        elif a != b:
            differences.append(f"{name}: {a!r} != {b!r}")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks and write results/<profile>/")
    run.add_argument("--profile", help="tiny, smoke or full (default: $COURSE_PROFILE or tiny)")
    run.add_argument("--only", nargs="*", help="run only notebooks whose names start with these prefixes")
    sub.add_parser("report", help="rewrite report.md from metrics.json").add_argument("--profile")
    check = sub.add_parser("check", help="exit 1 unless metrics.json meets the profile's course targets")
    check.add_argument("--profile")
    compare = sub.add_parser("compare", help="exit 1 unless two metrics.json files agree (times aside)")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            run_course(args.profile, args.only)
        elif args.command == "check":
            _check_targets(args.profile)
        elif args.command == "compare":
            differences = metric_differences(*(json.loads(p.read_text()) for p in (args.first, args.second)))
            print("\n".join(differences) or f"{args.first} and {args.second} agree.")
            return 1 if differences else 0
        else:
            print(_write_report(args.profile))
    except (NotebookFailed, ProfileError, OSError) as error:  # OSError: a results folder not writable
        print(f"\nThe course stopped: {error}", file=sys.stderr)
        return 1
    except _Interrupted as error:
        print(f"\n{error}", file=sys.stderr)
        return 130
    except expectations.TargetsMissed as error:
        print(f"\nThe course ran, but {error}\nRead the lessons' 'what you should see' notes in "
              "results/<profile>/notebooks/ and report.md.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
