"""What every notebook does first: the Colab set-up cell and the profile banner.

The first code cell of every lesson is :data:`COLAB_CELL`, word for word (a test checks it), so the
repository URL lives in one place: :data:`utils.config.REPO_URL`, copied in by
``python -m utils.notebook sync``.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from utils.config import REPO_URL, Profile, get_profile, set_seed

COLAB_CELL = f'''# On Colab (or another hosted notebook without the course) this installs it; elsewhere it does nothing.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("utils") is None and "google.colab" in sys.modules:
    subprocess.run(["git", "clone", "--depth", "1", "{REPO_URL}", "course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "course/requirements-colab.txt"], check=True)
    sys.path.insert(0, os.path.abspath("course"))
    os.chdir("course/notebooks")
    os.environ.setdefault("COURSE_PROFILE", "full")'''


def setup(seed: bool = True) -> Profile:
    """Print where this notebook runs (profile, model, data, device, versions) and seed everything."""
    import torch
    import transformers

    from utils.config import device

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
    from utils.course import NOTEBOOK_DIR

    changed = []
    for path in sorted((folder or NOTEBOOK_DIR).glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
        if "".join(first["source"]) != COLAB_CELL:
            first["source"] = COLAB_CELL.splitlines(keepends=True)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


if __name__ == "__main__" and sys.argv[1:] == ["sync"]:
    for path in sync_colab_cells():
        print(f"updated {path}")
