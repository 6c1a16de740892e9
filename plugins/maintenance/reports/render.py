"""Render a report's data (reports/data.py) to one self-contained HTML file (Jinja2 templates
under include/templates/, charts embedded as PNG data URIs), and the status page's HTML."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from maintenance.config import PROJECT_ROOT
from maintenance.durations import format_duration
from maintenance.reports import charts

TEMPLATES = PROJECT_ROOT / "include" / "templates"


@functools.lru_cache(maxsize=4)
def environment(folder: str = str(TEMPLATES)) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=jinja2.select_autoescape(
        ["html", "j2"], default=True), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, duration=duration, when=when, number=number, change=change)
    return env


def pct(value: float | None, digits: int = 2) -> str:
    return "no data" if value is None else f"{value:.{digits}f}%"


def duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def when(value: datetime | date | str | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.strftime(fmt)
    return value.strftime("%Y-%m-%d")


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def change(value: float | None) -> str:
    if value is None:
        return "n/a"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    return f"{arrow} {value:+.1f}%"


def build_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Every chart of a report, from its data; a section without data has no chart."""
    up = data["uptime"]
    days = up["days"]
    # issue 19: the verified deploys on the response-time and error charts (day i is centred on x = i)
    marks = [((d["at"] - data["start"]).total_seconds() / 86400 - 0.5, d["status"] == "fail")
             for d in data.get("deploys") or []]
    out: dict[str, Any] = {"uptime": charts.uptime_bars(up["endpoints"], days, up["target_percent"]),
                           "response": [charts.response_chart(e["name"], days, [d["p50_ms"] for d in e["days"]],
                                                              [d["p95_ms"] for d in e["days"]], marks=marks)
                                        for e in up["endpoints"]]}
    if data["errors"]:
        out["errors"] = charts.daily_bars("Error events per day (Sentry)", days,
                                          [v for _, v in data["errors"]["per_day"]], unit="events", color=charts.RED,
                                          marks=marks)
    if data["backups"] and any(v is not None for _, v in data["backups"]["age_per_day"]):
        limit = data["backups"]["max_age_hours"]
        out["backups"] = charts.daily_bars("Newest backup snapshot age per day", days,
                                           [v for _, v in data["backups"]["age_per_day"]], unit="hours",
                                           color=charts.GREEN, limit=limit,
                                           limit_label=f"limit {limit:g} h" if limit else "")
    traffic = data["analytics"]["traffic"]
    if traffic and traffic["status"] != "fail":
        evidence = traffic["evidence"]
        daily = evidence.get("daily") or []
        if daily:
            tdays = [date.fromisoformat(d["date"]) for d in daily]
            out["traffic"] = charts.daily_lines("Visitors and page views per day", tdays, {
                "visitors": [d.get("visitors") for d in daily], "page views": [d.get("pageviews") for d in daily]})
        pages = evidence.get("top_pages") or []
        if pages:
            out["top_pages"] = charts.ranking("Top pages (page views)", [p["page"] for p in pages],
                                              [p.get("pageviews") or 0 for p in pages])
    app = data["analytics"]["app"]
    app_charts: dict[str, Any] = {}
    for name, result in app.items():
        if result["status"] == "fail" or result["reason"] == "not_configured":
            continue
        evidence = result["evidence"]
        daily = evidence.get("daily") or []
        if name == "signups" and daily:
            app_charts[name] = charts.daily_bars("Membership signups per day", [date.fromisoformat(d["date"]) for d in daily],
                                                 [d["count"] for d in daily], unit="signups")
        elif name == "donations" and daily:
            ddays = sorted({d["date"] for d in daily})
            series = {}
            for currency in sorted({d["currency"] for d in daily}):
                sums = {d["date"]: d["sum"] for d in daily if d["currency"] == currency}
                series[currency] = [sums.get(day, 0) for day in ddays]
            app_charts[name] = charts.daily_lines("Donations per day (sum per currency, refunds apart)",
                                                  [date.fromisoformat(d) for d in ddays], series)
        elif name == "registrations" and evidence.get("events"):
            events = evidence["events"][:15]
            app_charts[name] = charts.ranking("Event registrations per event", [str(e["event"]) for e in events],
                                              [e["count"] for e in events], color=charts.GREEN)
        elif name == "admin_actions" and evidence.get("by_action"):
            actions = evidence["by_action"][:15]
            app_charts[name] = charts.ranking("Admin actions by type", [str(a["action"]) for a in actions],
                                              [a["count"] for a in actions], color=charts.PURPLE)
    out["app"] = app_charts
    return out


def render_report(data: dict[str, Any], templates: Path | None = None) -> str:
    env = environment(str(templates or TEMPLATES))
    return env.get_template("report.html.j2").render(data=data, charts=build_charts(data))


def render_status_page(data: dict[str, Any], *, base: str = "", templates: Path | None = None) -> str:
    env = environment(str(templates or TEMPLATES))
    return env.get_template("status_page.html.j2").render(data=data, base=base, svg=svg_helpers())


def render_check_page(name: str, series: list[tuple[datetime, float | None, str]], now: datetime, *,
                      base: str = "", templates: Path | None = None) -> str:
    env = environment(str(templates or TEMPLATES))
    return env.get_template("status_check.html.j2").render(name=name, series=series, now=now, base=base,
                                                           svg=svg_helpers(), timedelta_24h=timedelta(hours=24))


# -- inline SVG for the status page (drawn per request: cheaper than a PNG, and crisp) -----------------
def svg_helpers() -> dict[str, Any]:
    return {"bar_color": bar_color, "sparkline": sparkline, "series_path": series_path}


def bar_color(percent: float | None, counted: int = 1) -> str:
    if percent is None or not counted:
        return charts.GREY
    if percent >= 99.9:
        return charts.GREEN
    return charts.AMBER if percent >= 99.0 else charts.RED


def sparkline(values: list[float | None], width: int = 160, height: int = 28) -> str:
    """SVG polyline points of a series scaled between its own minimum and maximum (gaps skipped)."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, span = min(known), (max(known) - min(known)) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - ((v - low) / span) * (height - 4):.1f}"
                    for i, v in enumerate(values) if v is not None)


def series_path(series: list[tuple[datetime, float | None, str]], start: datetime, end: datetime,
                width: int = 880, height: int = 220) -> dict[str, Any]:
    """Points and failure marks of a raw response-time series for the drill-down chart."""
    span = max(1.0, (end - start).total_seconds())
    known = [ms for _, ms, _ in series if ms is not None]
    top = max(known) if known else 1.0
    points, fails = [], []
    for at, ms, status in series:
        x = (at - start).total_seconds() / span * width
        if status == "fail":
            fails.append(round(x, 1))
        if ms is not None:
            points.append(f"{x:.1f},{height - (ms / top) * (height - 10):.1f}")
    return {"points": " ".join(points), "fails": fails, "top": top, "width": width, "height": height}
