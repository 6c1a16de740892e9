"""The reports' charts: matplotlib (Agg, no display, no pyplot state) to PNG, embedded as
base64 data URIs so a report opens without network. Every chart has a fixed pixel size
(figure inches x dpi, no tight bounding box), which the tests check after decoding.

Labels come from outside (page paths any visitor can create, event and action names, endpoint
names): every chart draws them as plain text, never as mathtext ("/search/$\\x$", "$^$"), and a
chart that still cannot be drawn is replaced by an image saying so: one label never costs a report.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

DPI = 100
WIDTH = 900
GREEN, AMBER, RED, GREY, BLUE, PURPLE = "#2e9d5b", "#e3a21a", "#d64541", "#c9ced6", "#3b73b9", "#8e5bb5"

log = logging.getLogger(__name__)


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


def plain_text(draw: Any) -> Any:
    """A chart function whose texts are plain text: matplotlib reads "$...$" as mathtext when a
    Text is made, so the whole drawing runs with text.parse_math off."""
    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> Chart:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)
    return drawn


def _png(figure: Any, title: str) -> Chart:
    width, height = (int(round(v)) for v in figure.get_size_inches() * DPI)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI)   # no bbox_inches: the size stays what was asked
    except Exception as exc:  # noqa: BLE001 - a text the renderer refuses (a lone surrogate...) must not cost the report
        log.warning("chart %r could not be drawn (%s: %s); a placeholder is shown", title, type(exc).__name__,
                    str(exc)[:200])
        return _placeholder(title, width, height, type(exc).__name__)
    return Chart(title, buffer.getvalue(), width, height)


def _placeholder(title: str, width: int, height: int, why: str) -> Chart:
    """An image of the chart's size saying that it could not be drawn (no outside text in it)."""
    figure = _figure(height, width)
    figure.text(0.5, 0.5, f"This chart could not be drawn ({why}): one of its labels is not displayable.",
                ha="center", va="center", fontsize=10, color="#555555", parse_math=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return Chart(title, buffer.getvalue(), width, height)


def _day_axis(axes: Any, days: Sequence[date]) -> None:
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step))
    axes.set_xticklabels([f"{d:%d %b}" for d in days[::step]], fontsize=8)
    axes.set_xlim(-0.6, len(days) - 0.4)


def has_data(*series: Sequence[float | None]) -> bool:
    """Whether any value is known: a chart of nothing is not drawn (the report says "no data yet")."""
    return any(v is not None for values in series for v in values)


def _legend_above(axes: Any) -> None:
    """The legend above the plot, right-aligned, so it never covers a point."""
    axes.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, frameon=False, borderaxespad=0.2)


def _headroom(axes: Any, *series: Sequence[float | None]) -> None:
    """Start at 0 and leave room above the highest point (a marker at the top edge is cut)."""
    top = max((v for values in series for v in values if v is not None), default=0)
    axes.set_ylim(0, top * 1.12 if top > 0 else 1)


def uptime_color(value: float | None, target: float) -> str:
    if value is None:
        return GREY
    if value >= target:
        return GREEN
    return AMBER if value >= target - 1.0 else RED


@plain_text
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


@plain_text
def response_chart(name: str, days: Sequence[date], p50: Sequence[float | None], p95: Sequence[float | None],
                   marks: Sequence[tuple[float, bool]] = ()) -> Chart:
    figure = _figure(230)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = range(len(days))
    axes.plot(xs, [v if v is not None else float("nan") for v in p50], color=BLUE, marker="o", markersize=3, label="p50")
    axes.plot(xs, [v if v is not None else float("nan") for v in p95], color=PURPLE, marker="o", markersize=3, label="p95")
    _deploy_marks(axes, marks)
    axes.set_ylabel("ms", fontsize=9)
    _headroom(axes, p50, p95)
    axes.grid(axis="y", alpha=0.3)
    _legend_above(axes)
    _day_axis(axes, days)
    figure.suptitle(f"Response time per day: {name}", fontsize=11)
    return _png(figure, f"Response time per day: {name}")


@plain_text
def daily_bars(title: str, days: Sequence[date], values: Sequence[float | None], *, color: str = BLUE,
               unit: str = "", limit: float | None = None, limit_label: str = "",
               alert_days: Sequence[date] = (), marks: Sequence[tuple[float, bool]] = ()) -> Chart:
    """Bars in `color`; red only where something was wrong: above `limit`, or on `alert_days`
    (e.g. an error-rate spike). `marks`: the verified deploys (issue 19)."""
    figure = _figure(230)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = list(range(len(days)))
    heights = [v or 0 for v in values]
    alerts = set(alert_days)
    colors = [GREY if v is None else (RED if (limit is not None and v > limit) or day in alerts else color)
              for day, v in zip(days, values)]
    axes.bar(xs, heights, color=colors, width=0.8)
    _headroom(axes, values, [limit])
    _deploy_marks(axes, marks)
    if limit is not None:
        axes.axhline(limit, color=RED, linestyle="--", linewidth=1, label=limit_label or f"limit {limit:g}")
    if limit is not None or marks:
        _legend_above(axes)
    if unit:
        axes.set_ylabel(unit, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    _day_axis(axes, days)
    figure.suptitle(title, fontsize=11)
    return _png(figure, title)


@plain_text
def daily_lines(title: str, days: Sequence[date], series: dict[str, Sequence[float | None]], unit: str = "") -> Chart:
    figure = _figure(250)
    axes = figure.add_axes((0.07, 0.2, 0.9, 0.65))
    xs = range(len(days))
    palette = [BLUE, PURPLE, GREEN, AMBER, RED, "#555555"]
    for index, (label, values) in enumerate(series.items()):
        axes.plot(xs, [v if v is not None else float("nan") for v in values], marker="o", markersize=3,
                  color=palette[index % len(palette)], label=label)
    _headroom(axes, *series.values())
    if unit:
        axes.set_ylabel(unit, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    _legend_above(axes)
    _day_axis(axes, days)
    figure.suptitle(title, fontsize=11)
    return _png(figure, title)


@plain_text
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
