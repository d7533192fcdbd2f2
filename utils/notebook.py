"""What every notebook does first: ``profile = notebook.setup()``, the lesson's set-up cell.

The first code cell of every lesson is ``from utils import notebook`` and ``profile = notebook.setup()`` (a test
checks it): it resolves the profile once, prints where the notebook runs, seeds everything and styles the plots.
"""

from __future__ import annotations

import logging
import platform
import warnings

from utils.config import Profile, device, get_profile, set_seed


def setup(seed: bool = True) -> Profile:
    """Print where this notebook runs (profile, model, data, device, versions), seed everything and quiet the
    libraries' own progress bars and one warning (:func:`quiet_libraries`).

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
    quiet_libraries()
    return profile


def quiet_libraries() -> None:
    """A screen a class can read: one progress bar per long step, no warning a learner cannot act on.

    * The bars of ``datasets`` (map, filter, "Generating train split") and of transformers ("Loading weights",
      "Writing model shards") are switched off: each marks a step of a second or two, drawn as a widget that a
      saved notebook shows stuck at 0%. What stays: the trainer's bar (one per training, saved in its final
      state), the course's generation bar (one per cell, :mod:`utils.progress`) and the Hub's download bars
      (the ``full`` profile's first run), which transformers' switch would turn off too.
    * PEFT's deprecation warning :data:`utils.modeling.PEFT_DEPRECATION` and the two messages of an untied T5
      (:data:`utils.modeling.UNTIED_T5_LOAD`, :data:`utils.modeling.UNTIED_T5_MERGE`) are filtered; every other
      warning shows.
    """
    import datasets
    import huggingface_hub
    from transformers.utils import logging as transformers_logging

    from utils.modeling import PEFT_DEPRECATION, UNTIED_T5_MERGE

    downloads = not huggingface_hub.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    if downloads:
        huggingface_hub.utils.enable_progress_bars()
    warnings.filterwarnings("ignore", **PEFT_DEPRECATION)
    warnings.filterwarnings("ignore", **UNTIED_T5_MERGE)
    logging.getLogger("transformers.modeling_utils").addFilter(_not_untied_t5)


def _not_untied_t5(record: logging.LogRecord) -> bool:
    """A logging filter: False for transformers' message about an untied T5 (:data:`UNTIED_T5_LOAD`)."""
    from utils.modeling import UNTIED_T5_LOAD

    return not record.getMessage().startswith(UNTIED_T5_LOAD)


def _style_plots() -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})
    pd.set_option("display.max_colwidth", 120)
