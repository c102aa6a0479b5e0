"""Figures logged with evaluations, and shown in notebooks when a cell returns one.

The figures are :class:`~matplotlib.figure.Figure` objects made without pyplot: a Jupyter kernel draws every
open pyplot figure at the end of a cell, so a pyplot figure made only to be logged to MLflow would show as
well, and one a cell returns would show twice. These show once, when a cell returns one (``_repr_png_``),
and need no GUI backend anywhere (CLI, services, CI).
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure


class ShownFigure(Figure):
    """A figure that IPython draws as PNG when a cell returns it."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    fig = ShownFigure(figsize=(width, height))
    return fig, fig.subplots()


def metrics_bar(metrics: dict[str, float], title: str) -> Figure:
    """One bar per metric."""
    fig, ax = _figure(7, 3.5)
    names = list(metrics)
    bars = ax.bar(names, [metrics[n] for n in names], color="#3b7dd8")
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.set_ylabel("score")
    fig.tight_layout()
    return fig


def per_query_histogram(values: list[float], metric: str) -> Figure:
    """Distribution of one metric over queries (how many queries fail outright, how many are perfect)."""
    fig, ax = _figure(7, 3.5)
    ax.hist(values, bins=20, range=(0, 1), color="#5aa469", edgecolor="white")
    ax.set_xlabel(metric)
    ax.set_ylabel("queries")
    ax.set_title(f"Per-query {metric} ({len(values)} queries)")
    fig.tight_layout()
    return fig


def grid_comparison(rows: list[dict[str, Any]], metrics: list[str]) -> Figure:
    """Grouped bars: one group per grid configuration, one bar per metric."""
    fig, ax = _figure(max(7, 1.2 * len(rows)), 4)
    width = 0.8 / max(1, len(metrics))
    for i, metric in enumerate(metrics):
        xs = [j + i * width for j in range(len(rows))]
        ax.bar(xs, [r[metric] for r in rows], width=width, label=metric)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels([r["config"] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Experiment grid")
    fig.tight_layout()
    return fig
