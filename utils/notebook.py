"""What every notebook does first: ``profile = notebook.setup()``, the lesson's set-up cell.

The first code cell of every lesson is ``from utils import notebook`` and ``profile = notebook.setup()`` (a test
checks it): it resolves the profile once, prints where the notebook runs, seeds everything and styles the plots.
"""

from __future__ import annotations

import platform

from utils.config import Profile, device, get_profile, set_seed


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
