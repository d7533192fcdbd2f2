"""What a notebook shows: its set-up cell (``profile = notebook.setup()``, every lesson's first code cell) and
the course's progress bar, whose bars in one cell share one output that ends in their last state."""

from __future__ import annotations

import contextlib
import logging
import platform
import time
import types
import warnings

from tqdm.std import tqdm

from utils.config import Profile, device, get_profile, set_seed
from utils.modeling import PEFT_DEPRECATION, UNTIED_T5_LOAD, UNTIED_T5_MERGE


def setup() -> Profile:
    """Print where this notebook runs, seed everything, style the plots, :func:`quiet_libraries`; the profile,
    resolved once here (``utils`` functions take it as an argument, never from the environment)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch
    import transformers

    profile = get_profile()
    set_seed(profile.seed)
    print(profile.describe())
    print(f"Python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, device: {device()}")
    plt.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})
    pd.set_option("display.max_colwidth", 120)
    quiet_libraries()
    return profile


def quiet_libraries() -> None:
    """Switch off datasets' and transformers' progress bars (stuck at 0% in a saved notebook) and exactly the
    warnings no learner can act on (:data:`utils.modeling.PEFT_DEPRECATION`, an untied T5's two messages)."""
    import datasets
    import huggingface_hub
    from transformers.utils import logging as transformers_logging

    downloads = not huggingface_hub.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    if downloads:  # transformers' switch turns the Hub's bars off too
        huggingface_hub.utils.enable_progress_bars()
    warnings.filterwarnings("ignore", **PEFT_DEPRECATION)
    warnings.filterwarnings("ignore", **UNTIED_T5_MERGE)
    logging.getLogger("transformers.modeling_utils").addFilter(_not_untied_t5)


def _not_untied_t5(record: logging.LogRecord) -> bool:
    """A logging filter: False for transformers' message about an untied T5 (a function: added once only)."""
    return not record.getMessage().startswith(UNTIED_T5_LOAD)


_REDRAW_SECONDS = 0.2  # between two redraws of a bar in a notebook (the last state is always drawn)
_CELL = None  # the output the bars of the current cell draw in, and what they have counted so far


def _kernel():
    """The running Jupyter kernel's shell, or None (a terminal, a script, plain IPython)."""
    from IPython import get_ipython  # a dependency (ipykernel's)

    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


class Bar(contextlib.AbstractContextManager):
    """A progress bar over ``total`` items (``update(n)``), a context manager; outside a notebook, tqdm's."""

    def __init__(self, total: int, desc: str, unit: str = "it", disable: bool = False):
        global _CELL
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        shell = None if disable else _kernel()
        self._text = tqdm(total=total, desc=desc, unit=unit, disable=disable) if shell is None else None
        if shell is None:
            return
        self._started = time.perf_counter()
        count = shell.execution_count
        if _CELL is None or _CELL.execution_count != count:
            from IPython.display import display

            handle = display({"text/plain": ""}, raw=True, display_id=True)  # drawn at once below
            _CELL = types.SimpleNamespace(execution_count=count, handle=handle, runs=0, done={}, seconds=0.0)
        self._cell = _CELL
        self._draw()

    def _draw(self, note: str = "") -> None:
        line = tqdm.format_meter(self.n, self.total, time.perf_counter() - self._started, prefix=self.desc,
                                 unit=self.unit)
        self._cell.handle.update({"text/plain": line + note}, raw=True)
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
        elif self._cell is not None:  # the cell counts every bar's items by unit, and their runs and time
            cell = self._cell
            cell.runs, cell.seconds = cell.runs + 1, cell.seconds + time.perf_counter() - self._started
            cell.done[self.unit] = cell.done.get(self.unit, 0) + self.n
            items = " and ".join(f"{n:,} {unit}s" for unit, n in cell.done.items())
            self._draw(f"\n{cell.runs} runs in this cell: {items} in {tqdm.format_interval(cell.seconds)}"
                       if cell.runs > 1 else "")
            self._cell = None

    def __exit__(self, *exc) -> None:
        self.close()
