"""The runs a course run trains before the lessons (lesson 04's learning-rate grid), side by side: one after
the other, each with every core, against both at once, the cores split between them (what ``utils.course``
does on a CPU). Each way trains from nothing into a scratch results folder, in one process, the old way
first::

    python -m benchmarks.shared_runs                 # tiny profile: about 3.5 minutes on 2 cores

Measure on a quiet machine: a second job on 2 cores slows both ways, not alike.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from utils import course
from utils.config import Profile, get_profile


def compare(profile: Profile) -> dict[str, float]:
    """Seconds to train :data:`utils.course.SHARED_RUNS` one after the other, then side by side."""
    seconds, kept = {}, os.environ.get("COURSE_RESULTS_DIR")
    try:
        for way, side_by_side in (("one after the other", False), ("side by side", True)):
            with tempfile.TemporaryDirectory() as scratch:
                os.environ["COURSE_RESULTS_DIR"] = scratch  # the runs inherit it: nothing cached or kept
                seconds[way] = course.train_shared_runs(profile, side_by_side=side_by_side)
    finally:
        if kept is None:
            del os.environ["COURSE_RESULTS_DIR"]
        else:
            os.environ["COURSE_RESULTS_DIR"] = kept
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args(argv)
    seconds = compare(get_profile(args.profile))
    for way, value in seconds.items():
        print(f"{way}: {value:.1f} s")
    print(f"speedup {seconds['one after the other'] / seconds['side by side']:.2f}x ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
