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
    env.filters.update(pct=pct, duration=duration, when=when, number=number, change=change,
                       incident_reason=incident_reason)
    return env


def pct(value: float | None, digits: int = 2) -> str:
    return "no data" if value is None else f"{value:.{digits}f}%"


def incident_reason(incident: dict[str, Any]) -> str:
    """The reason once: the summary without the endpoint's name (its own column), prefixed with
    the reason class only when the summary does not say it ("http_5xx: homepage: http_5xx")."""
    summary = str(incident.get("summary") or "").removeprefix(f"{incident.get('check')}: ").strip()
    reason = incident.get("reason") or ""
    if not summary:
        return reason or "-"
    return summary if not reason or reason in summary else f"{reason}: {summary}"


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
    has_uptime = charts.has_data(*([d["percent"] for d in e["days"]] for e in up["endpoints"]))
    # issue 19: the verified deploys on the response-time and error charts (day i is centred on x = i)
    marks = [((d["at"] - data["start"]).total_seconds() / 86400 - 0.5, d["status"] == "fail")
             for d in data.get("deploys") or []]
    out: dict[str, Any] = {
        "uptime": charts.uptime_bars(up["endpoints"], days, up["target_percent"]) if has_uptime else None,
        "response": [charts.response_chart(e["name"], days, [d["p50_ms"] for d in e["days"]],
                                           [d["p95_ms"] for d in e["days"]], marks=marks)
                     for e in up["endpoints"] if charts.has_data([d["p50_ms"] for d in e["days"]],
                                                                 [d["p95_ms"] for d in e["days"]])],
        "errors": None}
    out["no_response"] = [e["name"] for e in up["endpoints"]
                          if not charts.has_data([d["p50_ms"] for d in e["days"]], [d["p95_ms"] for d in e["days"]])]
    errors = data["errors"]
    if errors and charts.has_data([v for _, v in errors["per_day"]]):
        out["errors"] = charts.daily_bars("Error events per day (Sentry)", days, [v for _, v in errors["per_day"]],
                                          unit="events", color=charts.BLUE, alert_days=errors["alert_days"],
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


def render_status_page(data: dict[str, Any], *, reports: list[dict[str, Any]] | None = None, base: str = "",
                       templates: Path | None = None) -> str:
    """`reports`: the newest published reports (publish.list_folder/list_s3); None: not listable."""
    env = environment(str(templates or TEMPLATES))
    return env.get_template("status_page.html.j2").render(data=data, reports=reports, base=base, svg=svg_helpers())


def render_public_page(page: dict[str, Any], templates: Path | None = None) -> str:
    """The public status page (reports/public.py's public_view): no link, no script, no remote asset."""
    env = environment(str(templates or TEMPLATES))
    return env.get_template("public_status.html.j2").render(page=page, svg=svg_helpers())


def render_report_list(reports: list[dict[str, Any]], templates: Path | None = None) -> str:
    env = environment(str(templates or TEMPLATES))
    return env.get_template("report_list.html.j2").render(reports=reports)


def render_check_page(name: str, series: list[tuple[datetime, float | None, str]], now: datetime, *,
                      facts: dict[str, Any] | None = None, base: str = "", templates: Path | None = None) -> str:
    """`facts`: response_ms and checked_at of the latest check, today_p95, tls_days_left (None: unknown)."""
    env = environment(str(templates or TEMPLATES))
    facts = {"response_ms": None, "checked_at": None, "today_p95": None, "tls_days_left": None, **(facts or {})}
    return env.get_template("status_check.html.j2").render(name=name, series=series, now=now, base=base, facts=facts,
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


def nice_step(top: float, ticks: int = 5) -> float:
    """A round axis step (1, 2 or 5 x 10^n) giving about `ticks` intervals up to top."""
    import math

    raw = max(top, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


CHART_MARGIN = {"left": 56, "right": 24, "top": 10, "bottom": 30}
TICK_STEPS = (timedelta(minutes=10), timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1),
              timedelta(hours=2), timedelta(hours=3))
MAX_DOTS = 600   # above this many points a dot per point is a smear: the line alone is drawn


def series_path(series: list[tuple[datetime, float | None, str]], start: datetime, end: datetime,
                width: int = 900, height: int = 260) -> dict[str, Any]:
    """The drill-down chart of a raw response-time series: plot area, y ticks in ms (round
    steps from 0), time ticks (about eight), a dot per result (with its time and value), failures
    as red marks on the time axis. A series younger than the window (day one) starts at its
    first result (an hour at least), so its points are not squeezed against the right edge."""
    m = CHART_MARGIN
    if series:
        start = max(start, min(series[0][0], end - timedelta(hours=1)))
    plot_w, plot_h = width - m["left"] - m["right"], height - m["top"] - m["bottom"]
    span = max(1.0, (end - start).total_seconds())
    known = [ms for _, ms, _ in series if ms is not None]
    step = nice_step(max(known) if known else 1.0)
    top = step * max(1, -(-max(known, default=1.0) // step))

    def x_of(at: datetime) -> float:
        return round(m["left"] + (at - start).total_seconds() / span * plot_w, 1)

    def y_of(ms: float) -> float:
        return round(m["top"] + plot_h - ms / top * plot_h, 1)

    dots, fails = [], []
    for at, ms, status in series:
        if status == "fail":
            fails.append({"x": x_of(at), "label": f"{at:%H:%M} UTC: failed"})
        if ms is not None:
            dots.append({"x": x_of(at), "y": y_of(ms), "fail": status == "fail",
                         "label": f"{at:%H:%M} UTC: {ms:,.0f} ms"})
    every = next((s for s in TICK_STEPS if (end - start) / s <= 9), TICK_STEPS[-1])
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    tick = midnight + every * (int((start - midnight) / every) + 1)
    x_ticks = []
    while tick <= end:
        x_ticks.append({"x": x_of(tick), "label": f"{tick:%H:%M}" if tick.hour or tick.minute else f"{tick:%d %b}"})
        tick += every
    y_ticks = [{"y": y_of(v), "label": f"{v:,.0f}"} for v in
               (step * i for i in range(int(round(top / step)) + 1))]
    return {"points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots if len(dots) <= MAX_DOTS else [],
            "fails": fails, "top": max(known) if known else None, "width": width, "height": height,
            "x_ticks": x_ticks, "y_ticks": y_ticks, "left": m["left"], "right": width - m["right"], "start": start,
            "plot_top": m["top"], "bottom": m["top"] + plot_h}
