"""What every notebook does first: the set-up (Colab) cell and the profile banner.

The first code cell of every lesson is :data:`COLAB_CELL`, word for word (a test checks it). It runs before the
course can be imported, so it is plain code made by :func:`colab_cell` from the one published-address setting,
:data:`utils.config.PUBLISHED_REPO` at :data:`utils.config.PUBLISHED_REF`, and copied into the notebooks by
``python -m utils.notebook sync``. Where the course is importable it does nothing; elsewhere (Colab) it fetches
the course pinned to that tag or commit, or, while no address is set, says how to get the course. The same
command writes the README's "Open in Colab" badges (:func:`readme_with_badges`) from that address.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path

from utils.config import (
    NOTEBOOK_DIR,
    PUBLISHED_REF,
    PUBLISHED_REPO,
    ROOT,
    Profile,
    device,
    get_profile,
    set_seed,
)

#: What the set-up cell says where the course is missing and no published copy can be fetched.
GET_THE_COURSE = (
    "This notebook needs the course's files (its utils/ folder), and no published copy is set up to fetch. "
    "Get the course yourself: clone it with git or upload its folder (on Colab: the Files pane), as a folder "
    "named 'course' next to this notebook, then run this cell again."
)


def colab_cell(repo: str | None = PUBLISHED_REPO, ref: str | None = PUBLISHED_REF) -> str:
    """The set-up cell's code for the course published at ``repo`` (a git address), pinned to ``ref`` (a tag
    or commit). Running it twice, or after a kernel restart, fetches nothing again."""
    if bool(repo) != bool(ref):
        raise ValueError("Set both PUBLISHED_REPO and PUBLISHED_REF in utils/config.py (a tag or commit, so that "
                         "every learner runs the same reviewed code), or neither.")
    return f'''# Set-up: where the course is not installed (e.g. on Colab) this gets it; elsewhere it does nothing.
import importlib.util
import os
import subprocess
import sys

PUBLISHED_REPO, PUBLISHED_REF = {repo!r}, {ref!r}  # from utils/config.py
if importlib.util.find_spec("utils") is None:
    course = next((p for p in ("course", "..") if os.path.isfile(os.path.join(p, "utils", "notebook.py"))), None)
    if course is None and not PUBLISHED_REPO:
        raise SystemExit({GET_THE_COURSE!r})
    commands = [] if course else [["git", "init", "-q", "course"],  # the published tag or commit, nothing else
                                  ["git", "-C", "course", "fetch", "-q", "--depth", "1", PUBLISHED_REPO, PUBLISHED_REF],
                                  ["git", "-C", "course", "checkout", "-q", "--detach", "FETCH_HEAD"]]
    course = course or "course"
    if commands or "google.colab" in sys.modules:  # what a hosted notebook lacks, at the course's versions
        commands.append([sys.executable, "-m", "pip", "install", "-q", "-r", f"{{course}}/requirements-colab.txt"])
    for command in commands:
        if subprocess.run(command).returncode != 0:
            raise SystemExit(f"Getting the course failed at: {{' '.join(command)}}. Check the network and run this "
                             "cell again, or get the course yourself (clone or upload it as a folder named 'course').")
    sys.path.insert(0, os.path.abspath(course))
    os.chdir(os.path.join(course, "notebooks"))
    if "google.colab" in sys.modules:
        os.environ.setdefault("COURSE_PROFILE", "full")'''


COLAB_CELL = colab_cell()


def setup(seed: bool = True) -> Profile:
    """Print where this notebook runs (profile, model, data, device, versions) and seed everything.

    Returns the profile, resolved once here: every function of ``utils`` that needs it takes it as a required
    argument and never reads the environment itself (``tests/test_explicit_profile.py`` checks)."""
    import torch
    import transformers

    profile = get_profile()
    if seed:
        set_seed(profile.seed)
    print(profile.describe())
    print(f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"device: {device()}")
    _style_plots()
    return profile


def _style_plots() -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})
    pd.set_option("display.max_colwidth", 120)


def sync_colab_cells(folder: Path | None = None) -> list[Path]:
    """Rewrite the first code cell of every notebook to :data:`COLAB_CELL`; return the notebooks changed."""
    changed = []
    for path in sorted((folder or NOTEBOOK_DIR).glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
        if "".join(first["source"]) != COLAB_CELL:
            first["source"] = COLAB_CELL.splitlines(keepends=True)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


# --- "Open in Colab" badges on the README's lesson table, from the same published address ------------------
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: The lesson table's last cell while no copy on GitHub is published (Colab opens notebooks from GitHub).
NOT_PUBLISHED = "—"
#: The header of the README's lesson table; its rows name a notebook in their second cell.
LESSON_TABLE_HEADER = "| # | notebook | what it teaches |"
_GITHUB = re.compile(r"(?:https://github\.com/|git@github\.com:)([\w.-]+)/([\w.-]+?)(?:\.git)?/?")


def colab_url(notebook: str, repo: str | None = PUBLISHED_REPO, ref: str | None = PUBLISHED_REF) -> str | None:
    """Where Colab opens ``notebooks/<notebook>.ipynb`` of the course published at ``repo`` (pinned to ``ref``);
    None while nothing is published, or when ``repo`` is not on GitHub (Colab opens notebooks from GitHub)."""
    match = _GITHUB.fullmatch(repo or "")
    if match is None or not ref:
        return None
    owner, name = match.groups()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{ref}/notebooks/{notebook}.ipynb"


def colab_badge(notebook: str, repo: str | None = PUBLISHED_REPO, ref: str | None = PUBLISHED_REF) -> str:
    """The lesson table's "Open in Colab" badge for ``notebook`` (:data:`NOT_PUBLISHED` while there is none)."""
    url = colab_url(notebook, repo, ref)
    return f"[![Open in Colab]({COLAB_BADGE_IMAGE})]({url})" if url else NOT_PUBLISHED


def readme_with_badges(text: str, repo: str | None = PUBLISHED_REPO, ref: str | None = PUBLISHED_REF) -> str:
    """The README ``text`` with the last cell of each lesson-table row set to the lesson's :func:`colab_badge`."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(LESSON_TABLE_HEADER)), None)
    if start is None:
        raise ValueError(f"The README has no lesson table (a line starting {LESSON_TABLE_HEADER!r}).")
    row = start + 2  # past the header and the |---| line
    while row < len(lines) and lines[row].startswith("|"):
        cells = lines[row].split(" | ")
        notebook = cells[1].strip("`")
        lines[row] = " | ".join([*cells[:-1], f"{colab_badge(notebook, repo, ref)} |"])
        row += 1
    return "\n".join(lines)


def sync_readme(path: Path = ROOT / "README.md", repo: str | None = PUBLISHED_REPO,
                ref: str | None = PUBLISHED_REF) -> bool:
    """Rewrite the README's Colab badges from the published address; True when it changed."""
    text = path.read_text(encoding="utf-8")
    updated = readme_with_badges(text, repo, ref)
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__" and sys.argv[1:] == ["sync"]:
    for path in sync_colab_cells():
        print(f"updated {path}")
    if sync_readme():
        print("updated the README's Colab badges")
