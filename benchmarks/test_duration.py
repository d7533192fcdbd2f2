"""How long ``make test`` (what CI runs) takes at several revisions, side by side on one machine, one after the other.

    python -m benchmarks.test_duration d25438b HEAD      # a clean clone of each, `make setup`, then a timed `make test`
    PYTEST_ADDOPTS=--durations=20 python -m benchmarks.test_duration --logs /tmp/logs HEAD   # and each step's output

Each revision gets a fresh clone and a fresh ``.venv`` (``make setup``, not timed), as CI starts; the steps of its
``make test`` (the ``test:`` target's prerequisites in that revision's Makefile) are timed one by one, in order. The
machine is often shared: run it when it is quiet (``uptime``) and compare only figures from one run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils.config import ROOT


def timed_make_test(revision: str, workdir: Path, logs: Path | None) -> tuple[dict[str, float], int]:
    """Clone ``revision`` into ``workdir``, set it up, and time each step of ``make test``: ({step: seconds}, exit code).

    With ``logs``, each step's output goes to ``logs/<workdir name>-<step>.log``."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(workdir)], check=True)
    subprocess.run(["git", "-C", str(workdir), "checkout", "--quiet", revision], check=True)
    subprocess.run(["make", "-C", str(workdir), "setup"], check=True, stdout=subprocess.DEVNULL)
    steps = re.search(r"^test:(.*)$", (workdir / "Makefile").read_text(), re.M).group(1).split()
    seconds, code = {}, 0
    for step in steps:
        out = open(logs / f"{workdir.name}-{step}.log", "w") if logs else subprocess.DEVNULL
        start = time.perf_counter()
        done = subprocess.run(["make", "-C", str(workdir), step], stdout=out, stderr=subprocess.STDOUT)
        seconds[step] = time.perf_counter() - start
        if logs:
            out.close()
        code = code or done.returncode
    return seconds, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", help="git revisions to time, in this order")
    parser.add_argument("--logs", type=Path, help="a folder for each step's output (made if missing)")
    args = parser.parse_args(argv)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="test-duration-") as tmp:
        for i, revision in enumerate(args.revisions):
            sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", revision], check=True,
                                 capture_output=True, text=True).stdout.strip()
            seconds, code = timed_make_test(revision, Path(tmp) / f"{i}-{sha}", args.logs)
            steps = ", ".join(f"{step} {took:.0f}" for step, took in seconds.items())
            rows.append(f"| {revision} ({sha}) | {sum(seconds.values()):.0f} | {steps} | {code} |")
            print(rows[-1], flush=True)
    print("\n| revision | `make test` seconds | its steps (seconds) | exit code |\n|---|---|---|---|\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
