"""The FUNSD study's F1 against forms/s, one point per row and runtime: the frontier as a PNG for funsd.md.

(bench/plot.py draws the bench's own frontier; distill cannot import bench, and this one plots the
study's rows with their spread over seeds.)
"""

from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    label: str
    runtime: str  # "PyTorch fp32" or "recommended CPU variant"
    forms_per_s: float
    f1: float  # mean over seeds, in points
    f1_std: float


def frontier(points: list[Point]) -> list[Point]:
    """The points no other point beats on both speed and F1, fastest last."""
    best: list[Point] = []
    for p in sorted(points, key=lambda p: (-p.forms_per_s, -p.f1)):
        if not best or p.f1 > best[-1].f1:
            best.append(p)
    return best[::-1]


def frontier_png(points: list[Point], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a buffer
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    markers = {"PyTorch fp32": "o", "recommended CPU variant": "^"}
    for runtime, marker in markers.items():
        ours = [p for p in points if p.runtime == runtime]
        if not ours:
            continue
        ax.errorbar(
            [p.forms_per_s for p in ours],
            [p.f1 for p in ours],
            yerr=[p.f1_std for p in ours],
            fmt=marker,
            capsize=3,
            label=runtime,
        )
        for p in ours:
            ax.annotate(p.label, (p.forms_per_s, p.f1), fontsize=7, xytext=(4, 3), textcoords="offset points")
    line = frontier(points)
    ax.plot([p.forms_per_s for p in line], [p.f1 for p in line], "k--", linewidth=0.8, label="frontier")
    ax.set_xscale("log")
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 2, 5, 10 rather than 2 x 10^0
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("forms/s on the FUNSD test split (log scale; higher is faster)")
    ax.set_ylabel("entity F1 (mean ± std over seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    # "best": matplotlib places it where the fewest points are (the frontier runs from upper left to lower right)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
