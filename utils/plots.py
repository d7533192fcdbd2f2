"""The course's plots: one function per kind of picture, from plain data to a matplotlib ``Figure``.

Leave a figure last in a cell to show it, or ``fig.savefig(path)``. Each figure is closed in ``pyplot`` before
it is returned, so Jupyter shows it once and a loop of plots does not pile up open figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

#: Colours used across the course: a neutral one, one for what is highlighted, one for limits.
_NEUTRAL, _HIGHLIGHT, _LIMIT = "#4C72B0", "#DD8452", "#C44E52"
_OTHER_COLOURS = (_NEUTRAL, "#55A868", "#8172B3", "#937860", "#64B5CD", "#8C8C8C")  # the highlight left out
_RUN_COLOURS = (_NEUTRAL, _HIGHLIGHT, "#55A868", "#8172B3", _LIMIT)
#: pandas' bar plots, as wide as matplotlib's (and with ``grid=True``: pandas switches it off unless told).
_BAR_WIDTH = 0.8


def _figure(n_cols: int = 1, width: float = 8.0, height: float = 4.0) -> tuple[Figure, list]:
    """A new figure with ``n_cols`` panels side by side, already closed in pyplot.

    Made through ``pyplot`` so that Jupyter's inline backend is loaded (a bare ``Figure()`` prints as text).
    """
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    axes = fig.subplots(1, n_cols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing}; it has {list(table.columns)}")


def length_distributions(lengths: Mapping[str, Sequence[int]], limits: Mapping[str, int] | None = None,
                         unit: str = "words", title: str | None = None, bins: int = 30) -> Figure:
    """One histogram per named series of lengths, side by side; a series' limit in ``limits`` (e.g. the
    model's 512 input tokens) is a red line, and the panel's title says how many items exceed it."""
    if not lengths:
        raise ValueError("lengths is empty; give e.g. {'dialogue': [...], 'summary': [...]}")
    limits = dict(limits or {})
    unknown = set(limits) - set(lengths)
    if unknown:
        raise ValueError(f"limits name {sorted(unknown)}, which are not in lengths ({', '.join(lengths)})")
    fig, axes = _figure(len(lengths), width=4.5 * len(lengths))
    for ax, (name, values) in zip(axes, lengths.items(), strict=True):
        values = np.asarray(values, dtype=float)
        ax.hist(values, bins=bins, color=_NEUTRAL, alpha=0.85)
        ax.set(xlabel=f"{name} length ({unit})", ylabel="count")
        label = f"{name}: median {np.median(values):.0f} {unit}"
        if name in limits:
            limit = limits[name]
            over = int((values > limit).sum())
            ax.axvline(limit, color=_LIMIT, linestyle="--", label=f"limit {limit}")
            ax.legend(loc="upper right")
            label += f"\n{over} of {len(values)} over the limit ({over / len(values):.1%})"
        ax.set_title(label, fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def category_counts(counts: pd.Series | Mapping[str, int], title: str = "", xlabel: str = "count") -> Figure:
    """Horizontal bars of counts per category (e.g. dialogues per topic), largest at the top."""
    counts = pd.Series(counts, dtype=float).sort_values()
    if counts.empty:
        raise ValueError("counts is empty; give e.g. df['topic'].value_counts()")
    fig, (ax,) = _figure(height=max(2.5, 0.3 * len(counts) + 1))
    counts.rename(index=str).plot.barh(ax=ax, color=_NEUTRAL, width=_BAR_WIDTH, grid=True)
    ax.set(xlabel=xlabel, title=title)
    return fig


def scores_with_ci(table: pd.DataFrame, label: str, score: str = "rouge1", highlight: Sequence[str] = (),
                   highlight_name: str = "highlighted", reference: float | None = None,
                   reference_name: str = "reference", title: str = "", percent: bool = True) -> Figure:
    """Scores (fractions) with their ``<score>_ci_low``/``_ci_high`` 95% intervals, one row per ``label``,
    best at the top. Labels in ``highlight`` get another colour; a ``reference`` value is a dotted line."""
    low, high = f"{score}_ci_low", f"{score}_ci_high"
    _require(table, (label, score, low, high))
    if table.empty:
        raise ValueError("table is empty; nothing to plot")
    data = table.sort_values(score)
    scale = 100 if percent else 1
    values = data[score].to_numpy(dtype=float) * scale
    errors = np.vstack([values - data[low].to_numpy(dtype=float) * scale,
                        data[high].to_numpy(dtype=float) * scale - values])
    names = data[label].astype(str).tolist()
    colours = [_HIGHLIGHT if name in set(highlight) else _NEUTRAL for name in names]
    fig, (ax,) = _figure(height=max(2.5, 0.4 * len(names) + 1.2))
    pd.Series(values, index=names).plot.barh(ax=ax, xerr=errors, color=colours, alpha=0.85, width=_BAR_WIDTH,
                                             grid=True, capsize=3, error_kw={"elinewidth": 1})
    handles = []
    if highlight:
        handles.append(Patch(color=_HIGHLIGHT, alpha=0.85, label=highlight_name))
    if reference is not None:
        handles.append(ax.axvline(reference * scale, color=_LIMIT, linestyle=":", label=reference_name))
    if handles:
        ax.legend(handles=handles, loc="lower right")
    ax.set(xlabel=f"{score} ({'%' if percent else 'fraction'}), 95% bootstrap CI", ylabel="", title=title)
    return fig


def lengths_by_group(table: pd.DataFrame, value: str = "tokens", group: str = "style",
                     limit: int | None = None, title: str = "") -> Figure:
    """Each group's values as dots (e.g. prompt tokens per prompt style), with an optional limit line."""
    _require(table, (value, group))
    groups = list(dict.fromkeys(table[group]))
    fig, (ax,) = _figure(height=max(2.5, 0.5 * len(groups) + 1.2))
    rng = np.random.default_rng(0)  # jitter only, so dots do not hide each other
    for i, name in enumerate(groups):
        values = table.loc[table[group] == name, value].to_numpy(dtype=float)
        ax.scatter(values, i + rng.uniform(-0.15, 0.15, len(values)), color=_NEUTRAL, alpha=0.7, s=20)
    ax.set_yticks(range(len(groups)), [str(g) for g in groups])
    if limit is not None:
        ax.axvline(limit, color=_LIMIT, linestyle="--", label=f"limit {limit}")
        ax.legend(loc="lower right")
    ax.set(xlabel=value, title=title)
    return fig


# --- lessons 04-05: forgetting and multi-task tuning ------------------------------------------------------
def heatmap(table: pd.DataFrame, title: str = "", diverging: bool = True, percent: bool = True,
            colorbar_label: str = "", loss_is_negative: bool = False) -> Figure:
    """A table of numbers as annotated coloured cells (e.g. the probe-score change of each model).

    ``diverging`` centres the colours on 0 and signs every number: red for positive, or, with
    ``loss_is_negative`` (changes in a score), red for negative.
    """
    if table.empty:
        raise ValueError("table is empty; give e.g. models as rows and probe tasks as columns")
    scale = 100 if percent else 1
    values = table.to_numpy(dtype=float) * scale
    limit = np.nanmax(np.abs(values)) or 1.0
    cmap = "RdBu" if loss_is_negative else "RdBu_r"
    style = {"cmap": cmap, "vmin": -limit, "vmax": limit} if diverging else {"cmap": "viridis"}
    fig, (ax,) = _figure(width=1.3 * table.shape[1] + 3, height=0.6 * table.shape[0] + 1.8)
    ax.grid(False)
    image = ax.imshow(values, aspect="auto", **style)
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    for (row, col), value in np.ndenumerate(values):
        shade = abs(value) / limit if diverging else 0.0
        text = f"{value:.1f}" if not diverging else "0.0" if round(value, 1) == 0 else f"{value:+.1f}"
        ax.text(col, row, text, ha="center", va="center", color="white" if shade > 0.6 else "black", fontsize=9)
    fig.colorbar(image, ax=ax, label=colorbar_label or ("percent points" if percent else ""))
    ax.set_title(title)
    return fig


def gain_vs_drop(table: pd.DataFrame, title: str = "", percent: bool = True) -> Figure:
    """Learning against forgetting (Biderman et al. 2024): one point per run (the index), probe drop against
    target gain with their intervals (``drop_low`` ...); optional ``method`` and ``learning_rate`` columns
    pick each point's marker and colour."""
    needed = ["gain", "gain_low", "gain_high", "drop", "drop_low", "drop_high"]
    missing = [c for c in needed if c not in table.columns]
    if table.empty or missing:
        raise ValueError(f"table needs one row per run and the columns {needed}; it lacks {missing or 'rows'}")
    scale = 100 if percent else 1
    methods = list(dict.fromkeys(table["method"])) if "method" in table else []
    rates = list(dict.fromkeys(table["learning_rate"])) if "learning_rate" in table else []
    markers = ("o", "s", "^", "D")
    fig, (ax,) = _figure(width=8.5, height=5.0)
    for name, row in table.iterrows():
        x, y = row["drop"] * scale, row["gain"] * scale
        xerr = [[x - row["drop_low"] * scale], [row["drop_high"] * scale - x]]
        yerr = [[y - row["gain_low"] * scale], [row["gain_high"] * scale - y]]
        marker = markers[methods.index(row["method"]) % len(markers)] if methods else "o"
        colour = _RUN_COLOURS[rates.index(row["learning_rate"]) % len(_RUN_COLOURS)] if rates else _NEUTRAL
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, color=colour, markersize=9, capsize=3, label=str(name))
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(8, 6), fontsize=9)
    ax.axvline(0, color="grey", linewidth=0.8)
    unit = "percent points" if percent else "fraction"
    ax.set(xlabel=f"probe average drop from the base ({unit}; right = more forgotten)",
           ylabel=f"target ROUGE-1 gain over the base ({unit})", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def learning_vs_forgetting(curve: pd.DataFrame, target: str = "target_rouge1", title: str = "",
                           percent: bool = True) -> Figure:
    """Scores along training (one row per step, one column per task): the target's thick, the others thin,
    their average dashed."""
    if target not in curve.columns:
        raise ValueError(f"curve lacks the target column {target!r}; it has {list(curve.columns)}")
    others = [c for c in curve.columns if c != target]
    scale = 100 if percent else 1
    fig, (ax,) = _figure()
    steps = curve.index.to_numpy()
    for i, name in enumerate(others):
        ax.plot(steps, curve[name] * scale, marker="o", linewidth=1, alpha=0.7,
                color=_OTHER_COLOURS[i % len(_OTHER_COLOURS)], label=name)
    if others:
        ax.plot(steps, curve[others].mean(axis=1) * scale, color="black", linestyle="--", linewidth=1.5,
                label="average of the others")
    ax.plot(steps, curve[target] * scale, marker="o", color=_HIGHLIGHT, linewidth=3, label=target)
    ax.set(xlabel=curve.index.name or "step", ylabel=f"score ({'%' if percent else 'fraction'})", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def stacked_bars(table: pd.DataFrame, columns: Sequence[str], title: str = "", xlabel: str = "count") -> Figure:
    """Horizontal bars, one per row of ``table``, stacked from ``columns`` (e.g. zero- and few-shot)."""
    _require(table, columns)
    fig, (ax,) = _figure(height=max(2.5, 0.4 * len(table) + 1.2))
    colours = (_NEUTRAL, _HIGHLIGHT, *_OTHER_COLOURS[1:])
    stacked = table[list(columns)].astype(float).rename(index=str, columns=str)
    stacked.plot.barh(ax=ax, stacked=True, width=_BAR_WIDTH, grid=True,
                      color=[colours[i % len(colours)] for i in range(len(columns))])
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    ax.legend(loc="lower right")
    return fig


def grouped_bars(table: pd.DataFrame, title: str = "", ylabel: str = "score", percent: bool = True) -> Figure:
    """One group of bars per row of ``table`` (e.g. a task), one bar per column (e.g. a model)."""
    if table.empty:
        raise ValueError("table is empty; give e.g. tasks as rows and models as columns")
    scale = 100 if percent else 1
    n_rows, n_cols = table.shape
    fig, (ax,) = _figure(width=max(8.0, 1.2 * n_rows * max(1, n_cols / 3)))
    (table.astype(float) * scale).rename(index=str, columns=str).plot.bar(ax=ax, width=_BAR_WIDTH, rot=0, grid=True)
    ax.set(xlabel="", ylabel=f"{ylabel} ({'%' if percent else 'fraction'})", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def training_curves(histories: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """Loss against step for each run (training solid, validation dashed on the same axis), and validation
    ROUGE-1; ``histories`` maps a run's name to its :func:`utils.training.history_frame`."""
    if not histories:
        raise ValueError("histories is empty; give e.g. {'full': training.history_frame(run.log_history)}")
    has_rouge = any("eval_rouge1" in h.columns and h["eval_rouge1"].notna().any() for h in histories.values())
    fig, axes = _figure(2 if has_rouge else 1, width=12 if has_rouge else 8)
    for i, (name, history) in enumerate(histories.items()):
        colour = _RUN_COLOURS[i % len(_RUN_COLOURS)]
        if "loss" not in history.columns:
            raise ValueError(f"the history of {name!r} has no 'loss' column; pass training.history_frame(...)")
        train = history["loss"].dropna()
        axes[0].plot(train.index, train.values, color=colour, label=f"{name}: training")
        if "eval_loss" in history.columns and history["eval_loss"].notna().any():
            val = history["eval_loss"].dropna()
            axes[0].plot(val.index, val.values, color=colour, linestyle="--", marker="o", label=f"{name}: validation")
        if has_rouge and "eval_rouge1" in history.columns:
            rouge = history["eval_rouge1"].dropna() * 100
            axes[1].plot(rouge.index, rouge.values, color=colour, marker="o", label=name)
    axes[0].set(xlabel="training step", ylabel="loss (cross-entropy per target token)")
    axes[0].legend(fontsize=9)
    if has_rouge:
        axes[1].set(xlabel="training step", ylabel="validation ROUGE-1 (%)")
        axes[1].legend(fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
