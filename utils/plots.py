"""The course's plots: one function per kind of picture, from plain data (scores as fractions, shown in %)
to a matplotlib ``Figure`` closed in ``pyplot`` (Jupyter shows it once; a loop of plots leaves none open)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

_NEUTRAL, _HIGHLIGHT, _LIMIT = "#4C72B0", "#DD8452", "#C44E52"  # the course's neutral, highlight and limit
_COLOURS = (_NEUTRAL, _HIGHLIGHT, "#55A868", "#8172B3", "#937860", "#64B5CD", "#8C8C8C")
_OTHER_COLOURS = (_NEUTRAL, *_COLOURS[2:])  # the highlight left out
_RUN_COLOURS = (*_COLOURS[:4], _LIMIT)
_BAR_WIDTH = 0.8  # pandas' bars as wide as matplotlib's (pass grid=True too: pandas turns it off unless told)


def _figure(n_cols: int = 1, width: float = 8.0, height: float = 4.0) -> tuple[Figure, list]:
    """A figure of ``n_cols`` panels in a row, made in pyplot (it loads Jupyter's backend), closed there."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    axes = fig.subplots(1, n_cols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


def _require(table: pd.DataFrame, columns: Sequence[str], if_empty: str | None = None) -> None:
    if missing := [c for c in columns if c not in table.columns]:
        raise ValueError(f"table lacks the column(s) {missing}; it has {list(table.columns)}")
    if if_empty is not None and table.empty:
        raise ValueError(f"table is empty; {if_empty}")


def length_distributions(lengths: Mapping[str, Sequence[int]], limits: Mapping[str, int] | None = None,
                         unit: str = "words", title: str | None = None) -> Figure:
    """One histogram per named series of lengths, side by side; a series' limit in ``limits`` (e.g. the
    model's 512 input tokens) is a red line, and the panel's title says how many items exceed it."""
    if not lengths:
        raise ValueError("lengths is empty; give e.g. {'dialogue': [...], 'summary': [...]}")
    limits = dict(limits or {})
    if unknown := set(limits) - set(lengths):
        raise ValueError(f"limits name {sorted(unknown)}, which are not in lengths ({', '.join(lengths)})")
    fig, axes = _figure(len(lengths), width=4.5 * len(lengths))
    for ax, (name, values) in zip(axes, lengths.items(), strict=True):
        values = np.asarray(values, dtype=float)
        ax.hist(values, bins=30, color=_NEUTRAL, alpha=0.85)
        ax.set(xlabel=f"{name} length ({unit})", ylabel="count")
        label = f"{name}: median {np.median(values):.0f} {unit}"
        if name in limits:
            over = int((values > limits[name]).sum())
            ax.axvline(limits[name], color=_LIMIT, linestyle="--", label=f"limit {limits[name]}")
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
                   reference_name: str = "reference", title: str = "") -> Figure:
    """Scores with their ``<score>_ci_low``/``_ci_high`` 95% intervals, a row per ``label``, best at the top.
    Labels in ``highlight`` get another colour; a ``reference`` value is a dotted line."""
    low, high = f"{score}_ci_low", f"{score}_ci_high"
    _require(table, (label, score, low, high), if_empty="nothing to plot")
    data = table.sort_values(score)
    values, lows, highs = (data[column].to_numpy(dtype=float) * 100 for column in (score, low, high))
    errors = np.vstack([values - lows, highs - values])
    names = data[label].astype(str).tolist()
    colours = [_HIGHLIGHT if name in set(highlight) else _NEUTRAL for name in names]
    fig, (ax,) = _figure(height=max(2.5, 0.4 * len(names) + 1.2))
    pd.Series(values, index=names).plot.barh(ax=ax, xerr=errors, color=colours, alpha=0.85, width=_BAR_WIDTH,
                                             grid=True, capsize=3, error_kw={"elinewidth": 1})
    handles = [Patch(color=_HIGHLIGHT, alpha=0.85, label=highlight_name)] if highlight else []
    if reference is not None:
        handles.append(ax.axvline(reference * 100, color=_LIMIT, linestyle=":", label=reference_name))
    if handles:
        ax.legend(handles=handles, loc="lower right")
    ax.set(xlabel=f"{score} (%), 95% bootstrap CI", ylabel="", title=title)
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


def heatmap(table: pd.DataFrame, title: str = "", diverging: bool = True, colorbar_label: str = "",
            loss_is_negative: bool = False) -> Figure:
    """A table as annotated coloured cells (e.g. each model's probe-score change); ``diverging`` centres the
    colours on 0 and signs every number: red is positive, or negative with ``loss_is_negative``."""
    _require(table, (), if_empty="give e.g. models as rows and probe tasks as columns")
    values = table.to_numpy(dtype=float) * 100
    limit = np.nanmax(np.abs(values)) or 1.0
    style = ({"cmap": "RdBu" if loss_is_negative else "RdBu_r", "vmin": -limit, "vmax": limit} if diverging
             else {"cmap": "viridis"})
    fig, (ax,) = _figure(width=1.3 * table.shape[1] + 3, height=0.6 * table.shape[0] + 1.8)
    ax.grid(False)
    image = ax.imshow(values, aspect="auto", **style)
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.1f}" if not diverging else "0.0" if round(value, 1) == 0 else f"{value:+.1f}"
        colour = "white" if diverging and abs(value) / limit > 0.6 else "black"
        ax.text(col, row, text, ha="center", va="center", color=colour, fontsize=9)
    fig.colorbar(image, ax=ax, label=colorbar_label or "percent points")
    ax.set_title(title)
    return fig


def gain_vs_drop(table: pd.DataFrame, title: str = "") -> Figure:
    """Learning against forgetting (Biderman et al. 2024): each run (the index) at its probe drop and target
    gain, with intervals (``drop_low`` ...); any ``method``/``learning_rate`` column picks marker/colour."""
    _require(table, ("gain", "gain_low", "gain_high", "drop", "drop_low", "drop_high"), "give a row per run")
    methods, rates = ([*dict.fromkeys(table[c])] if c in table else [] for c in ("method", "learning_rate"))
    fig, (ax,) = _figure(width=8.5, height=5.0)
    for name, row in table.iterrows():
        x, y = row["drop"] * 100, row["gain"] * 100
        xerr = [[x - row["drop_low"] * 100], [row["drop_high"] * 100 - x]]
        yerr = [[y - row["gain_low"] * 100], [row["gain_high"] * 100 - y]]
        marker = ("o", "s", "^", "D")[methods.index(row["method"]) % 4] if methods else "o"
        colour = _RUN_COLOURS[rates.index(row["learning_rate"]) % len(_RUN_COLOURS)] if rates else _NEUTRAL
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, color=colour, markersize=9, capsize=3, label=str(name))
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(8, 6), fontsize=9)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="probe average drop from the base (percent points; right = more forgotten)",
           ylabel="target ROUGE-1 gain over the base (percent points)", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def learning_vs_forgetting(curve: pd.DataFrame, title: str = "") -> Figure:
    """Scores along training (one row per step, one column per task): the target's (``target_rouge1``)
    thick, the others thin, their average dashed."""
    target = "target_rouge1"
    _require(curve, (target,))
    others = [c for c in curve.columns if c != target]
    fig, (ax,) = _figure()
    for i, name in enumerate(others):
        ax.plot(curve[name] * 100, marker="o", linewidth=1, alpha=0.7,
                color=_OTHER_COLOURS[i % len(_OTHER_COLOURS)], label=name)
    if others:
        ax.plot(curve[others].mean(axis=1) * 100, color="black", linestyle="--", linewidth=1.5,
                label="average of the others")
    ax.plot(curve[target] * 100, marker="o", color=_HIGHLIGHT, linewidth=3, label=target)
    ax.set(xlabel=curve.index.name or "step", ylabel="score (%)", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def stacked_bars(table: pd.DataFrame, columns: Sequence[str], title: str = "", xlabel: str = "count") -> Figure:
    """Horizontal bars, one per row of ``table``, stacked from ``columns`` (e.g. zero- and few-shot)."""
    _require(table, columns)
    fig, (ax,) = _figure(height=max(2.5, 0.4 * len(table) + 1.2))
    stacked = table[list(columns)].astype(float).rename(index=str, columns=str)
    stacked.plot.barh(ax=ax, stacked=True, width=_BAR_WIDTH, grid=True,
                      color=[_COLOURS[i % len(_COLOURS)] for i in range(len(columns))])
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    ax.legend(loc="lower right")
    return fig


def grouped_bars(table: pd.DataFrame, title: str = "") -> Figure:
    """One group of bars per row of ``table`` (e.g. a task), one bar per column (e.g. a model)."""
    _require(table, (), if_empty="give e.g. tasks as rows and models as columns")
    fig, (ax,) = _figure(width=max(8.0, 1.2 * table.shape[0] * max(1, table.shape[1] / 3)))
    (table.astype(float) * 100).rename(index=str, columns=str).plot.bar(ax=ax, width=_BAR_WIDTH, rot=0, grid=True)
    ax.set(xlabel="", ylabel="score (%)", title=title)
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
        axes[0].plot(history["loss"].dropna(), color=colour, label=f"{name}: training")
        if "eval_loss" in history.columns and history["eval_loss"].notna().any():
            axes[0].plot(history["eval_loss"].dropna(), "o--", color=colour, label=f"{name}: validation")
        if has_rouge and "eval_rouge1" in history.columns:
            axes[1].plot(history["eval_rouge1"].dropna() * 100, color=colour, marker="o", label=name)
    ylabels = ("loss (cross-entropy per target token)", "validation ROUGE-1 (%)")
    for ax, ylabel in zip(axes, ylabels[: len(axes)], strict=True):
        ax.set(xlabel="training step", ylabel=ylabel)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
