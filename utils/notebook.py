"""What every notebook does first: ``profile = notebook.setup()``, the lesson's set-up cell.

The first code cell of every lesson is ``from utils import notebook`` and ``profile = notebook.setup()`` (a test
checks it): it resolves the profile once, prints where the notebook runs, seeds everything and styles the plots.
"""

from __future__ import annotations

import logging
import platform
import time
import warnings

from tqdm.std import tqdm

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
      state), the course's generation bar (one per cell, :mod:`utils.notebook`) and the Hub's download bars
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


#: Seconds between two redraws of a bar in a notebook (the last state is always drawn).
_REDRAW_SECONDS = 0.2


class _CellOutput:
    """The one output the bars of a notebook cell draw in, and what they have counted so far."""

    def __init__(self, execution_count: int, handle):
        self.execution_count = execution_count
        self.handle = handle
        self.runs = 0
        self.done: dict[str, int] = {}  # unit -> items finished by the cell's earlier bars
        self.seconds = 0.0


_CELL: _CellOutput | None = None


def _kernel():
    """The running Jupyter kernel's shell, or None (a terminal, a script, plain IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


class Bar:
    """A progress bar over ``total`` items (``update(n)`` as they are done); a context manager.

    ``disable=True`` draws nothing. In a notebook it draws in its cell's one output (see the module's note).
    """

    def __init__(self, total: int, desc: str, unit: str = "it", disable: bool = False):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._shell = None if disable else _kernel()
        self._text = None
        if disable or self._shell is None:
            self._text = tqdm(total=total, desc=desc, unit=unit, disable=disable)
            return
        self._started = self._drawn = time.perf_counter()
        self._cell = self._cell_output()
        self._draw()

    def _cell_output(self) -> _CellOutput:
        global _CELL
        count = self._shell.execution_count
        if _CELL is None or _CELL.execution_count != count:
            from IPython.display import display

            _CELL = _CellOutput(count, display({"text/plain": self._line()}, raw=True, display_id=True))
        return _CELL

    def _line(self) -> str:
        return tqdm.format_meter(self.n, self.total, time.perf_counter() - self._started, prefix=self.desc,
                                 unit=self.unit)

    def _draw(self, final: bool = False) -> None:
        text = self._line()
        cell = self._cell
        if final:
            cell.runs += 1
            cell.done[self.unit] = cell.done.get(self.unit, 0) + self.n
            cell.seconds += time.perf_counter() - self._started
            if cell.runs > 1:
                items = " and ".join(f"{n:,} {unit}s" for unit, n in cell.done.items())
                text += f"\n{cell.runs} runs in this cell: {items} in {tqdm.format_interval(cell.seconds)}"
        cell.handle.update({"text/plain": text}, raw=True)
        self._drawn = time.perf_counter()

    def update(self, n: int = 1) -> None:
        if self._text is not None:
            self._text.update(n)
            return
        self.n += n
        if time.perf_counter() - self._drawn >= _REDRAW_SECONDS:
            self._draw()

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
        elif self._cell is not None:
            self._draw(final=True)
            self._cell = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
