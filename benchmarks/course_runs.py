"""The course itself: wall time of every notebook and of the whole course, and its peak memory.

The course is run the way a learner runs it (``python -m utils.course run --profile ...``), but in a scratch
copy of the project, so that no cached training run from an earlier course run makes it look faster and
nothing under ``results/`` is touched. ``COURSE_MODEL``, if set, is passed on (the course then runs on that
model, and the figures say so). While it runs, the memory of its whole process tree (the runner and
the notebook kernel) is sampled; the peak is what the machine must have.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from utils import results
from utils.config import ROOT, Profile
from utils.course import SHARED_RUNS_STEP, course_notebooks
from utils.modeling import model_fingerprint

#: Budgets from DESIGN.md: the whole course on a 2-core CPU.
TIME_TARGET_S = {"smoke": 5 * 60, "tiny": 20 * 60}
MEMORY_TARGET_MB = 3000  # "at most 3 GB" for the tiny course
SKIP_WHEN_COPYING = {".git", ".venv", "results", "__pycache__", ".pytest_cache", ".ruff_cache"}


def code_fingerprint(profile: Profile, root: Path = ROOT) -> str:
    """A hash of what decides the course's run time: the notebooks, ``utils`` and the profile's model."""
    paths = [*sorted((root / "notebooks").glob("*.ipynb")), *sorted((root / "utils").rglob("*.py"))]
    return results.digest([model_fingerprint(profile.model),
                                *(chunk for path in paths for chunk in (str(path.relative_to(root)), path.read_bytes()))])


def read_timings(profile_name: str, root: Path = ROOT) -> dict[str, float] | None:
    """``results/<profile>/timings.json`` as {notebook: seconds}, or None when there is none."""
    path = root / "results" / profile_name / "timings.json"
    return json.loads(path.read_text()) if path.exists() else None


def summarize_timings(profile_name: str, timings: dict[str, float]) -> dict:
    """Per-notebook and total seconds, against the profile's budget; notes any notebook missing."""
    expected = [p.stem for p in course_notebooks()] or sorted(timings)
    notebooks = {name: timings[name] for name in expected if name in timings}
    total = float(sum(notebooks.values()) + timings.get(SHARED_RUNS_STEP, 0.0))  # and the runs trained before them
    target = TIME_TARGET_S.get(profile_name)
    return {"notebooks": notebooks, "total_s": total, "target_s": target,
            "within_target": None if target is None else total <= target,
            "missing_notebooks": [name for name in expected if name not in timings]}


class TreeMemory:
    """Samples the resident memory of a process and all its descendants in a background thread."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.pid, self.every_s = pid, every_s
        self.peak_total_mb = 0.0  # all processes of the tree at the same moment
        self.peak_process_mb = 0.0  # the largest single process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                sizes = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:  # a process ended between listing and reading: skip this sample
                sizes = []
            if sizes:
                self.peak_total_mb = max(self.peak_total_mb, sum(sizes) / 2**20)
                self.peak_process_mb = max(self.peak_process_mb, max(sizes) / 2**20)
            self._stop.wait(self.every_s)


def project_copy(destination: Path, root: Path = ROOT) -> Path:
    """Copy the project (no results, virtual environment or git data) to ``destination``."""
    shutil.copytree(root, destination, ignore=shutil.ignore_patterns(*SKIP_WHEN_COPYING), symlinks=True)
    return destination


def run_course_measured(profile: Profile) -> dict:
    """Run the whole course in a scratch copy of the project; its timings, wall time and peak memory."""
    with tempfile.TemporaryDirectory(prefix=f"bench-course-{profile.name}-") as scratch:
        copy = project_copy(Path(scratch) / "project")
        env = {**os.environ, "COURSE_PROFILE": profile.name, "PYTHONPATH": str(copy)}
        command = [sys.executable, "-m", "utils.course", "run", "--profile", profile.name]
        print(f"Running the {profile.name} course in {copy} ...", flush=True)
        started = time.perf_counter()
        with subprocess.Popen(command, cwd=copy, env=env) as process, TreeMemory(process.pid) as memory:
            returncode = process.wait()
        wall = time.perf_counter() - started
        if returncode != 0:
            raise RuntimeError(f"The {profile.name} course failed (exit code {returncode}); run "
                               f"`make course PROFILE={profile.name}` to see the failing notebook.")
        timings = read_timings(profile.name, copy)
        if timings is None:
            raise RuntimeError(f"The {profile.name} course ran but wrote no timings into {copy}/results; "
                               "check that PYTHONPATH makes the kernels import the copy's utils.")
    result = summarize_timings(profile.name, timings)
    result.update({
        "source": "measured by benchmarks (fresh copy, no cached runs)",
        "model": profile.model,
        "wall_s": wall,
        "peak_memory_mb": memory.peak_total_mb,
        "peak_process_memory_mb": memory.peak_process_mb,
        "memory_target_mb": MEMORY_TARGET_MB if profile.name == "tiny" else None,
        "code_fingerprint": code_fingerprint(profile),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
    })
    return result


def course_figures(profile: Profile, mode: str, previous: dict | None) -> dict | None:
    """The course's figures for one profile, by ``mode``.

    * ``auto``: reuse the previous benchmark's measurement if the notebooks, ``utils`` and model are
      unchanged since, else run the course;
    * ``run``: always run the course (in a scratch copy);
    * ``reuse``: take ``results/<profile>/timings.json`` from the last ``make course`` (no memory figure;
      it may include time saved by cached training runs);
    * ``skip``: keep the previous figures as they are (or none).
    """
    if mode == "skip":
        return previous
    if mode == "auto" and previous and previous.get("code_fingerprint") == code_fingerprint(profile):
        print(f"Course ({profile.name}): reusing the figures measured {previous.get('measured_at')} "
              "(nothing changed since; pass --course run to measure again).")
        return previous
    if mode == "reuse":
        name = profile.name
        timings = read_timings(name)
        if timings is None:
            raise SystemExit(f"No results/{name}/timings.json yet: run `make course PROFILE={name}` "
                             "first, or use --course run.")
        return {**summarize_timings(name, timings), "source": f"results/{name}/timings.json"}
    return run_course_measured(profile)
