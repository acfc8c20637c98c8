"""F1 against latency, one point per model and runtime: the efficiency frontier as a PNG.

End-to-end latency (seconds per form over the test split) where it was measured, else batch 1
at the longest sequence. The frontier joins the points no other point beats on both axes.
"""

from __future__ import annotations

import io
from typing import Any

from bench.runtimes import BY_NAME

MARKERS = {"teacher": "s", "student": "o", "student-baseline": "^"}
EXTRA_MARKERS = ("D", "v", "P", "X", "*")


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points not dominated (lower latency and higher F1 than them) by any other, by latency."""
    best: list[tuple[float, float]] = []
    for latency, f1 in sorted(points, key=lambda p: (p[0], -p[1])):
        if not best or f1 > best[-1][1]:
            best.append((latency, f1))
    return best


def plot_points(rows: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str, float, float]]]:
    """(x-axis label, [(model, runtime label, latency s, F1)]) from the derived report rows."""
    e2e = [r for r in rows if r["group"] == "end-to-end" and r.get("f1") is not None and r.get("forms")]
    if e2e:
        return "milliseconds per form, end to end (log scale)", [
            (r["model"], r["runtime_label"], r["p50_s"] / r["forms"], r["f1"]) for r in e2e
        ]
    b1 = [r for r in rows if r["group"] == "latency batch 1 seq 512" and r.get("f1") is not None]
    return "latency at batch 1, seq 512, milliseconds (log scale)", [
        (r["model"], r["runtime_label"], r["p50_s"], r["f1"]) for r in b1
    ]


def frontier_png(rows: list[dict[str, Any]], timing_only: bool = False) -> bytes | None:
    """The plot as PNG bytes (None when no row has both a latency and an F1)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a buffer
    import matplotlib.pyplot as plt

    xlabel, points = plot_points(rows)
    if not points:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    labels = [r.label for r in BY_NAME.values()]
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    models = list(dict.fromkeys(p[0] for p in points))
    markers = {m: MARKERS.get(m, EXTRA_MARKERS[i % len(EXTRA_MARKERS)]) for i, m in enumerate(models)}
    fig, ax = plt.subplots(figsize=(9.5, 5), dpi=110)
    for model, runtime, latency, f1 in points:
        ax.scatter(
            latency * 1000,
            f1 * 100,
            marker=markers[model],
            color=colours.get(runtime, "grey"),
            s=55,
            zorder=3,
        )
    edge = frontier([(p[2] * 1000, p[3] * 100) for p in points])
    ax.step([p[0] for p in edge], [p[1] for p in edge], where="post", color="black", linewidth=1, zorder=2)
    # Only the frontier's points are named (the legends say what every other point is), labels
    # alternately below and above so that neighbours do not print over each other.
    named = [p for p in points if (p[2] * 1000, p[3] * 100) in edge]
    for i, (model, runtime, latency, f1) in enumerate(sorted(named, key=lambda p: p[2])):
        ax.annotate(
            f"{model} · {runtime}",
            (latency * 1000, f1 * 100),
            fontsize=7,
            xytext=(5, -11 if i % 2 == 0 else 5),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 30, 100, 0.5 rather than 3x10^1
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("entity F1 (test split)")
    title = "F1 against latency (frontier: black)"
    if timing_only:
        title += " — timing only, F1 not meaningful"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    used = list(dict.fromkeys(p[1] for p in points))
    model_legend = ax.legend(
        [Line2D([], [], marker=markers[m], color="grey", linestyle="") for m in models],
        models,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        title="model",
        title_fontsize=7,
    )
    ax.add_artist(model_legend)
    ax.legend(
        [Line2D([], [], marker="o", color=colours.get(r, "grey"), linestyle="") for r in used],
        used,
        loc="upper left",
        bbox_to_anchor=(1.01, 0.62),
        fontsize=7,
        title="runtime",
        title_fontsize=7,
    )
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
