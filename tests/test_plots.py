"""The course's plots draw small inputs into figures, headlessly (Agg backend)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from utils import plots  # noqa: E402


def _renders(fig) -> bool:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return isinstance(fig, Figure) and buffer.getbuffer().nbytes > 1000


@pytest.fixture
def scores():
    return pd.DataFrame({
        "template": ["a", "b", "c"],
        "rouge1": [0.20, 0.30, 0.10],
        "rouge1_ci_low": [0.15, 0.25, 0.05],
        "rouge1_ci_high": [0.25, 0.35, 0.15],
    })


def test_length_distributions_counts_items_over_the_limit():
    fig = plots.length_distributions({"dialogue": [10, 20, 600], "summary": [5, 6, 7]}, limits={"dialogue": 512},
                                     unit="tokens")
    assert _renders(fig)
    assert len(fig.axes) == 2
    assert "1 of 3 over the limit" in fig.axes[0].get_title()
    assert "over the limit" not in fig.axes[1].get_title()


def test_length_distributions_rejects_unknown_limits():
    with pytest.raises(ValueError, match="prompt"):
        plots.length_distributions({"dialogue": [1, 2]}, limits={"prompt": 512})
    with pytest.raises(ValueError, match="empty"):
        plots.length_distributions({})


def test_category_counts_puts_the_largest_on_top():
    fig = plots.category_counts({"travel": 3, "shopping": 9, "health": 1}, title="topics")
    assert _renders(fig)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "shopping" and labels[0] == "health"


def test_scores_with_ci_sorts_and_highlights(scores):
    fig = plots.scores_with_ci(scores, label="template", highlight=["c"], highlight_name="held out",
                               reference=0.2334, reference_name="reference lab")
    assert _renders(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]  # best at the top
    widths = [round(bar.get_width(), 6) for bar in ax.patches[:3]]
    assert widths == [10.0, 20.0, 30.0]  # fractions shown in percent
    colours = {bar.get_facecolor()[:3] for bar in ax.patches[:3]}
    assert len(colours) == 2  # the held-out template stands out
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["held out", "reference lab"]
    assert legend.legend_handles[0].get_facecolor()[:3] == ax.patches[0].get_facecolor()[:3]  # c's colour


def test_scores_with_ci_names_missing_columns(scores):
    with pytest.raises(ValueError, match="rouge2_ci_low"):
        plots.scores_with_ci(scores, label="template", score="rouge2")


def test_lengths_by_group_draws_each_group():
    table = pd.DataFrame({"style": ["zero_shot", "zero_shot", "few_shot"], "tokens": [100, 120, 530]})
    fig = plots.lengths_by_group(table, limit=512)
    assert _renders(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["zero_shot", "few_shot"]
    with pytest.raises(ValueError, match="group"):
        plots.lengths_by_group(table, group="group")


def test_figures_are_not_left_open_in_pyplot(scores):
    """Jupyter shows a returned figure once; an open pyplot figure would be shown a second time."""
    plt.close("all")
    plots.scores_with_ci(scores, label="template")
    plots.category_counts({"a": 1})
    assert plt.get_fignums() == []


# In Jupyter a figure is shown as a PNG only once the inline backend has been loaded, which pyplot does on
# its first figure. A bare ``Figure()`` returned as the first plot of a notebook printed "<Figure size ...>".
_FIRST_PLOT_IN_A_KERNEL = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import pandas as pd
from utils import plots
fig = getattr(plots, {name!r})({args})
data, _ = shell.display_formatter.format(fig)
print(sorted(data))
"""


@pytest.mark.parametrize("name, args", [
    ("heatmap", "pd.DataFrame({'qa': [0.1, 0.2]}, index=['full', 'lora'])"),
    ("grouped_bars", "pd.DataFrame({'full': [0.1, 0.2]}, index=['qa', 'topic'])"),
])
def test_a_plot_shown_first_in_a_notebook_is_displayed_as_png(name, args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.run([sys.executable, "-c", _FIRST_PLOT_IN_A_KERNEL.format(name=name, args=args)],
                             env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    assert "image/png" in process.stdout, process.stdout


def _bars(ax) -> list[tuple[float, float, float, float]]:
    """Every bar of ``ax`` as (x, y, width, height), rounded: the figure's data, however it was drawn."""
    return [tuple(round(v, 6) for v in (bar.get_x(), bar.get_y(), bar.get_width(), bar.get_height()))
            for bar in ax.patches]


def test_category_counts_draws_each_count_as_a_bar():
    ax = plots.category_counts({"travel": 3, "shopping": 9, "health": 1}).axes[0]
    assert [(x, w) for x, _, w, _ in _bars(ax)] == [(0, 1), (0, 3), (0, 9)]  # health, travel, shopping


def test_stacked_bars_stack_each_rows_columns():
    table = pd.DataFrame({"zero": [3, 1], "few": [2, 4]}, index=["qa", "topic"])
    ax = plots.stacked_bars(table, ["zero", "few"]).axes[0]
    bars = _bars(ax)
    assert [(x, w) for x, _, w, _ in bars] == [(0, 3), (0, 1), (3, 2), (1, 4)]  # "few" starts where "zero" ends
    assert [t.get_text() for t in ax.get_yticklabels()] == ["qa", "topic"]
    assert ax.yaxis_inverted()  # the first row at the top
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "few"]


def test_grouped_bars_put_one_bar_per_column_in_each_rows_group():
    table = pd.DataFrame({"full": [0.1, 0.2], "lora": [0.3, 0.4]}, index=["qa", "topic"])
    ax = plots.grouped_bars(table).axes[0]
    bars = _bars(ax)
    assert [h for *_, h in bars] == [10.0, 20.0, 30.0, 40.0]  # fractions in percent, column by column
    centres = [round(x + w / 2, 6) for x, _, w, _ in bars]
    assert centres == [-0.2, 0.8, 0.2, 1.2]  # "full" left of "lora" within each row's group
    assert [round(w, 6) for _, _, w, _ in bars] == [0.4] * 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["qa", "topic"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["full", "lora"]


def test_heatmap_of_changes_colours_a_loss_red_and_prints_it_negative():
    changes = pd.DataFrame({"qa": [-0.5, 0.0], "topic": [0.25, -0.001]}, index=["full", "lora"])
    fig = plots.heatmap(changes, loss_is_negative=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["-50.0", "+25.0", "0.0", "-0.1"]
    image = ax.images[0]
    red, blue = image.cmap(image.norm(-50.0)), image.cmap(image.norm(25.0))
    assert red[0] > red[2] and blue[2] > blue[0], "a loss (negative) is red, a gain blue"
    default = plots.heatmap(changes).axes[0].images[0]
    assert default.cmap(default.norm(-50.0))[2] > default.cmap(default.norm(-50.0))[0]  # drops table: red = positive


def test_gain_vs_drop_puts_each_run_at_its_drop_and_gain_with_intervals():
    table = pd.DataFrame({"gain": [0.3, 0.1], "gain_low": [0.25, 0.05], "gain_high": [0.35, 0.15],
                          "drop": [0.4, 0.05], "drop_low": [0.35, 0.0], "drop_high": [0.45, 0.1],
                          "method": ["full", "lora"], "learning_rate": [1e-3, 1e-3]}, index=["full", "lora"])
    ax = plots.gain_vs_drop(table).axes[0]
    points = sorted((round(float(line.get_xdata()[0]), 6), round(float(line.get_ydata()[0]), 6))
                    for line in ax.lines if len(line.get_xdata()) == 1 and line.get_marker() in ("o", "s"))
    assert points == [(5.0, 10.0), (40.0, 30.0)]
    assert [t.get_text() for t in ax.texts] == ["full", "lora"]
    with pytest.raises(ValueError, match="drop_low"):
        plots.gain_vs_drop(table.drop(columns="drop_low"))
