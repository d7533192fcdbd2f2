"""A screen a class can read (DESIGN.md): in the executed notebooks of a course run, no warning, no absolute path
of the machine that ran the course, and at most one progress bar per cell, none saved before its end.

``make determinism`` runs a smoke course and then this file on its executed notebooks
(``SCREEN_NOTEBOOKS=results/test-rerun/smoke/notebooks``). Without ``SCREEN_NOTEBOOKS`` that check is skipped (a
folder left by an earlier run would judge older code); the checker's own tests always run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from utils.config import ROOT, shown_path

#: Where the executed notebooks to check are (set by ``make determinism``).
NOTEBOOKS_VARIABLE = "SCREEN_NOTEBOOKS"
#: A text bar (tqdm's "desc:  40%|████      | 4/10 [...]") and its counts.
TEXT_BAR = re.compile(r"%\|")
BAR_COUNTS = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")
HTML_BAR = re.compile(r"<progress value='?(\d+)'? max='?(\d+)'?")


def _machine_paths(results: Path | None = None) -> list[str]:
    """Absolute paths that say where the course ran: its folder, the results folder, the home and temporary
    folders, the Python environment, and the usual roots of those on other machines."""
    found = {str(ROOT), str(Path.home()), tempfile.gettempdir(), sys.prefix, "/root/", "/home/", "/Users/", "/tmp/"}
    if results is not None:
        found.add(str(results.resolve()))
    return sorted(path for path in found if len(path) > 1)


def _texts(output) -> list[str]:
    """The text a reader sees in one output (streams, text and HTML representations, tracebacks)."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return [value for mime, value in output.get("data", {}).items()
            if mime.startswith("text/") and isinstance(value, str)]


def _bar(output) -> str | None:
    """Why ``output`` is a progress bar that a saved notebook shows wrongly ('' for a good bar, None: no bar)."""
    data = output.get("data", {})
    plain = data.get("text/plain", "") if output.output_type != "stream" else output.text
    if "application/vnd.jupyter.widget-view+json" in data:
        return f"a widget bar, saved as its first state: {plain.strip()[:80]!r}" if TEXT_BAR.search(plain) else None
    html = HTML_BAR.search(data.get("text/html", ""))
    if html:
        return "" if html[1] == html[2] else f"a bar saved before its end ({html[1]} of {html[2]})"
    if not TEXT_BAR.search(plain):
        return None
    counts = BAR_COUNTS.findall(plain)
    if counts and counts[-1][0] != counts[-1][1]:
        return f"a bar saved before its end: {plain.strip().splitlines()[-1][:80]!r}"
    return ""


def screen_problems(path: Path, results: Path | None = None) -> list[str]:
    """What a class would see in the executed notebook ``path`` and should not: text on stderr (a warning, a
    library's log line), an absolute path of the machine, more than one progress bar in a cell, a bar that the
    saved copy shows stuck (a widget saved at 0%, a bar short of its end)."""
    notebook = nbformat.read(path, as_version=4)
    machine = _machine_paths(results)
    problems = []
    code_cells = (cell for cell in notebook.cells if cell.cell_type == "code")
    for number, cell in enumerate(code_cells, 1):
        where = f"{path.name}, code cell {number}"
        bars = 0
        for output in cell.get("outputs", []):
            texts = _texts(output)
            if output.output_type == "stream" and output.name == "stderr":
                problems.append(f"{where}: text on stderr: {output.text.strip()[:160]!r}")
            for text in texts:
                shown = [p for p in machine if p in text]
                if shown:
                    line = next(line for line in text.splitlines() if any(p in line for p in shown))
                    problems.append(f"{where}: an absolute path ({shown[0]}): {line.strip()[:160]!r}")
            bar = _bar(output)
            if bar is not None:
                bars += 1
                if bar:
                    problems.append(f"{where}: {bar}")
        if bars > 1:
            problems.append(f"{where}: {bars} progress bars (one per long step: the cell's calls share one)")
    return problems


def test_executed_notebooks_show_a_screen_a_class_can_read():
    folder = os.environ.get(NOTEBOOKS_VARIABLE)
    if not folder:
        pytest.skip(f"{NOTEBOOKS_VARIABLE} is not set: `make determinism` runs a smoke course and then this check "
                    f"({NOTEBOOKS_VARIABLE}=results/test-rerun/smoke/notebooks)")
    folder = Path(folder)
    if not folder.is_absolute():
        folder = ROOT / folder
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        pytest.skip(f"no executed notebooks in {shown_path(folder)}: run `make determinism` (or "
                    f"`python -m utils.course run --profile smoke`) first")
    problems = [problem for path in notebooks for problem in screen_problems(path, folder.parent.parent)]
    assert not problems, f"{len(problems)} things a class should not see:\n" + "\n".join(problems)


# The checker itself, on notebooks made here ----------------------------------------------------------------


def _notebook(tmp_path: Path, *cells: list) -> Path:
    notebook = nbformat.v4.new_notebook()
    for outputs in cells:
        cell = nbformat.v4.new_code_cell("pass")
        cell.outputs = outputs
        notebook.cells.append(cell)
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    return path


def _widget_bar(text: str):
    return nbformat.v4.new_output("display_data", {
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
        "text/plain": text})


def test_the_checker_finds_warnings_paths_and_stuck_or_extra_bars(tmp_path):
    path = _notebook(
        tmp_path,
        [nbformat.v4.new_output("stream", name="stderr", text=f"{sys.prefix}/x.py:3: FutureWarning: old\n")],
        [nbformat.v4.new_output("stream", name="stdout", text=f"Run folder: {ROOT / 'results'}\n")],
        [_widget_bar("Loading weights:   0%|          | 0/52 [00:00<?, ?it/s]")],
        [nbformat.v4.new_output("display_data", {"text/plain": "Full: 100%|██████████| 16/16 [00:01<00:00]"}),
         nbformat.v4.new_output("display_data", {"text/plain": "LoRA:  50%|█████     | 8/16 [00:01<00:01]"})],
    )
    problems = screen_problems(path)
    assert any("cell 1: text on stderr" in p and "FutureWarning" in p for p in problems), problems
    assert any("cell 1: an absolute path" in p for p in problems), problems  # the warning names a file
    assert any("cell 2: an absolute path" in p and "Run folder" in p for p in problems), problems
    assert any("cell 3: a widget bar, saved as its first state" in p for p in problems), problems
    assert any("cell 4: a bar saved before its end" in p for p in problems), problems
    assert any("cell 4: 2 progress bars" in p for p in problems), problems
    assert len(problems) == 6, problems


def test_the_checker_accepts_a_quiet_screen(tmp_path):
    trainer = ("<div><progress value='8' max='8' style='width:300px'></progress> [8/8 00:02, Epoch 0/1]</div>"
               "<table><tr><td>0</td></tr></table>")
    path = _notebook(
        tmp_path,
        [nbformat.v4.new_output("stream", name="stdout", text="Run folder: results/smoke/runs/full-1\n")],
        [nbformat.v4.new_output("display_data", {"text/html": trainer, "text/plain": "<IPython.core.display.HTML>"})],
        [nbformat.v4.new_output("display_data", {
            "text/plain": "Probe title: 100%|██████████| 16/16 [00:00<00:00, 41.0prompt/s]\n"
                          "20 runs in this cell: 320 prompts in 00:14"})],
        [nbformat.v4.new_output("execute_result", {"text/plain": "'https://huggingface.co/google/flan-t5-base'"},
                                execution_count=4)],
    )
    assert screen_problems(path) == []


# What the notebooks print through ------------------------------------------------------------------------


def test_paths_are_shown_relative_to_the_course(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_RESULTS_DIR", raising=False)
    assert shown_path(ROOT / "data" / "models" / "tiny-flan-t5") == "data/models/tiny-flan-t5"
    assert shown_path(str(ROOT / "results" / "tiny" / "metrics.json")) == "results/tiny/metrics.json"
    assert shown_path("google/flan-t5-base") == "google/flan-t5-base"  # a Hub id, not a path
    assert shown_path(Path.home() / "course-results") == "~/course-results"
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    assert shown_path(tmp_path / "smoke" / "runs" / "full-1") == "$COURSE_RESULTS_DIR/smoke/runs/full-1"


class _Handle:
    def __init__(self, shown: list):
        self.shown = shown

    def update(self, data, raw=False):
        self.shown[-1] = data["text/plain"]


def _fake_kernel(monkeypatch, count: list[int]) -> list[str]:
    """Make :mod:`utils.notebook` believe it runs in a kernel, in cell ``count[0]``; returns the outputs drawn."""
    import IPython.display

    from utils import notebook

    outputs: list[str] = []

    class Shell:
        kernel = object()

        @property
        def execution_count(self):
            return count[0]

    def display(data, raw=False, display_id=None):
        outputs.append(data["text/plain"])
        return _Handle(outputs)

    monkeypatch.setattr(notebook, "_kernel", lambda: Shell())
    monkeypatch.setattr(notebook, "_CELL", None)
    monkeypatch.setattr(IPython.display, "display", display)
    return outputs


def test_the_bars_of_a_cell_share_one_output_that_ends_in_their_last_state(monkeypatch):
    from utils.notebook import Bar

    cell = [1]
    outputs = _fake_kernel(monkeypatch, cell)
    for name in ("Full", "LoRA"):
        with Bar(total=4, desc=name, unit="prompt") as bar:
            bar.update(2)
            bar.update(2)
    assert len(outputs) == 1, outputs
    assert outputs[0].startswith("LoRA: 100%|") and "4/4" in outputs[0], outputs
    assert "2 runs in this cell: 8 prompts" in outputs[0], outputs
    cell[0] = 2  # the next cell draws its own output
    with Bar(total=3, desc="Zero-shot", unit="prompt") as bar:
        bar.update(3)
    assert len(outputs) == 2 and outputs[1].startswith("Zero-shot: 100%|") and "runs in this cell" not in outputs[1]
    with Bar(total=3, desc="hidden", unit="prompt", disable=True) as bar:
        bar.update(3)
    assert len(outputs) == 2


def test_outside_a_kernel_the_bar_is_tqdms_text_on_stderr(capsys):
    from utils.notebook import Bar

    with Bar(total=2, desc="Scoring", unit="prompt") as bar:
        bar.update(2)
    captured = capsys.readouterr()
    assert "Scoring: 100%|" in captured.err and "2/2" in captured.err and captured.out == ""


def test_later_lessons_load_lesson_03s_runs_instead_of_training_their_own():
    """Lessons 04-06 build lesson 03's recipe through ``training.recipe_trainer``: in a course run, no two runs of
    one name were trained with the same settings (two would mean lesson 03's cells and the library's recipe drifted
    apart, so the cache missed)."""
    folder = os.environ.get(NOTEBOOKS_VARIABLE)
    if not folder:
        pytest.skip(f"{NOTEBOOKS_VARIABLE} is not set: `make determinism` runs a smoke course and then this check")
    runs = (Path(folder) if Path(folder).is_absolute() else ROOT / folder).parent / "runs"
    for name in ("single_task_full", "single_task_lora"):
        settings = [json.dumps(json.loads((p / "final" / "training_summary.json").read_text())["settings"],
                               sort_keys=True) for p in sorted((runs / name).glob("*/final/..")) if p.is_dir()]
        assert settings, f"no finished {name} run in {shown_path(runs)}"
        assert len(settings) == len(set(settings)), f"{name}: one recipe was trained twice under different keys"
