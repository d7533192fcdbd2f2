"""How long ``make test`` (what CI runs) takes at two revisions, side by side on one machine, one after the other.

    python -m benchmarks.test_duration d25438b HEAD      # a clean clone of each, `make setup`, then a timed `make test`

Each revision gets a fresh clone and a fresh ``.venv`` (``make setup``, not timed), as CI starts. The machine is
often shared: run it when it is quiet (``uptime``) and compare only figures from one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils.config import ROOT


def timed_make_test(revision: str, workdir: Path) -> tuple[float, int]:
    """Clone ``revision`` into ``workdir``, set it up, and time ``make test``: (seconds, exit code)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(workdir)], check=True)
    subprocess.run(["git", "-C", str(workdir), "checkout", "--quiet", revision], check=True)
    subprocess.run(["make", "-C", str(workdir), "setup"], check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    done = subprocess.run(["make", "-C", str(workdir), "test"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", help="git revisions to time, in this order")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="test-duration-") as tmp:
        for i, revision in enumerate(args.revisions):
            sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", revision], check=True,
                                 capture_output=True, text=True).stdout.strip()
            seconds, code = timed_make_test(revision, Path(tmp) / f"{i}-{sha}")
            rows.append(f"| {revision} ({sha}) | {seconds:.0f} | {code} |")
            print(rows[-1], flush=True)
    print("\n| revision | `make test` seconds | exit code |\n|---|---|---|\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
