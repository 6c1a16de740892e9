"""The reports' charts: matplotlib (Agg, no display, no pyplot state) to PNG, embedded as
base64 data URIs so a report opens without network. Every chart has a fixed pixel size
(figure inches x dpi, no tight bounding box), which the tests check after decoding.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

DPI = 100
WIDTH = 900
GREEN, AMBER, RED, GREY, BLUE, PURPLE = "#2e9d5b", "#e3a21a", "#d64541", "#c9ced6", "#3b73b9", "#8e5bb5"


@dataclass
class Chart:
    title: str
    png: bytes
    width: int
    height: int

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def _figure(height: int, width: int = WIDTH) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any, title: str) -> Chart:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)   # no bbox_inches: the size stays what was asked
    width, height = (int(round(v)) for v in figure.get_size_inches() * DPI)
    return Chart(title, buffer.getvalue(), width, height)


def _day_axis(axes: Any, days: Sequence[date]) -> None:
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step))
    axes.set_xticklabels([f"{d:%d %b}" for d in days[::step]], fontsize=8)
    axes.set_xlim(-0.6, len(days) - 0.4)


def uptime_color(value: float | None, target: float) -> str:
    if value is None:
        return GREY
    if value >= target:
        return GREEN
    return AMBER if value >= target - 1.0 else RED


def uptime_bars(endpoints: list[dict[str, Any]], days: Sequence[date], target: float) -> Chart:
    """One row of daily bars per endpoint (UptimeRobot style): green at or above the target,
    amber within a point below it, red further below, grey without data."""
    rows = max(1, len(endpoints))
    figure = _figure(70 + 34 * rows)
    axes = figure.add_axes((0.16, 44 / (70 + 34 * rows), 0.82, 1 - 60 / (70 + 34 * rows)))
    for row, endpoint in enumerate(endpoints):
        y = rows - 1 - row
        for index, day in enumerate(endpoint["days"]):
            axes.add_patch(_rectangle(index - 0.42, y - 0.36, 0.84, 0.72, uptime_color(day["percent"], target)))
    axes.set_ylim(-0.6, rows - 0.4)
    axes.set_yticks(range(rows))
    axes.set_yticklabels([e["name"] for e in reversed(endpoints)], fontsize=9)
    _day_axis(axes, days)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    figure.suptitle(f"Daily uptime per endpoint (target {target:g}%)", fontsize=11, y=0.99)
    return _png(figure, "Daily uptime per endpoint")


def _rectangle(x: float, y: float, w: float, h: float, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=color, edgecolor="none")


def _deploy_marks(axes: Any, marks: Sequence[tuple[float, bool]]) -> None:
    """Issue 19: a dotted vertical line per verified deploy (x in day units), red when it regressed."""
    labelled = set()
    for x, regressed in marks:
        label = "deploy (regressed)" if regressed else "deploy"
        axes.axvline(x, color=RED if regressed else GREY, linestyle=":", linewidth=1.2,
                     label=None if label in labelled else label)
        labelled.add(label)


def response_chart(name: str, days: Sequence[date], p50: Sequence[float | None], p95: Sequence[float | None],
                   marks: Sequence[tuple[float, bool]] = ()) -> Chart:
    figure = _figure(230)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = range(len(days))
    axes.plot(xs, [v if v is not None else float("nan") for v in p50], color=BLUE, marker="o", markersize=3, label="p50")
    axes.plot(xs, [v if v is not None else float("nan") for v in p95], color=PURPLE, marker="o", markersize=3, label="p95")
    _deploy_marks(axes, marks)
    axes.set_ylabel("ms", fontsize=9)
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", frameon=False)
    _day_axis(axes, days)
    figure.suptitle(f"Response time per day: {name}", fontsize=11)
    return _png(figure, f"Response time per day: {name}")


def daily_bars(title: str, days: Sequence[date], values: Sequence[float | None], *, color: str = BLUE,
               unit: str = "", limit: float | None = None, limit_label: str = "",
               marks: Sequence[tuple[float, bool]] = ()) -> Chart:
    figure = _figure(230)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = list(range(len(days)))
    heights = [v or 0 for v in values]
    colors = [GREY if v is None else (RED if limit is not None and v > limit else color) for v in values]
    axes.bar(xs, heights, color=colors, width=0.8)
    _deploy_marks(axes, marks)
    if limit is not None:
        axes.axhline(limit, color=RED, linestyle="--", linewidth=1, label=limit_label or f"limit {limit:g}")
    if limit is not None or marks:
        axes.legend(fontsize=8, loc="upper left", frameon=False)
    if unit:
        axes.set_ylabel(unit, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    _day_axis(axes, days)
    figure.suptitle(title, fontsize=11)
    return _png(figure, title)


def daily_lines(title: str, days: Sequence[date], series: dict[str, Sequence[float | None]], unit: str = "") -> Chart:
    figure = _figure(250)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = range(len(days))
    palette = [BLUE, PURPLE, GREEN, AMBER, RED, "#555555"]
    for index, (label, values) in enumerate(series.items()):
        axes.plot(xs, [v if v is not None else float("nan") for v in values], marker="o", markersize=3,
                  color=palette[index % len(palette)], label=label)
    axes.set_ylim(bottom=0)
    if unit:
        axes.set_ylabel(unit, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", frameon=False)
    _day_axis(axes, days)
    figure.suptitle(title, fontsize=11)
    return _png(figure, title)


def ranking(title: str, labels: Sequence[str], values: Sequence[float], color: str = BLUE) -> Chart:
    """Horizontal bars, largest first (top pages, events, admin actions)."""
    count = max(1, len(labels))
    height = 60 + 24 * count
    figure = _figure(height)
    axes = figure.add_axes((0.3, 20 / height, 0.66, 1 - 50 / height))
    positions = list(range(count))[::-1]
    axes.barh(positions[:len(values)], list(values), color=color, height=0.7)
    axes.set_yticks(positions[:len(labels)])
    axes.set_yticklabels([label if len(label) <= 42 else label[:40] + "…" for label in labels], fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.suptitle(title, fontsize=11)
    return _png(figure, title)
