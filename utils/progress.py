"""The course's progress bar: one per long step, readable live and in a saved notebook.

In a Jupyter kernel a bar is one line of text in one output that is updated in place (an IPython display
handle), so an executed copy keeps the bar's last state; a ``tqdm.auto`` widget is saved as its first one
("0%"). The bars of one cell share that output: a cell that scores five models shows one bar that moves on from
model to model and ends with a count of its runs. Outside a kernel (a terminal, a script, the tests) it is
tqdm's own text bar on stderr.
"""

from __future__ import annotations

import time

from tqdm.std import tqdm

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
