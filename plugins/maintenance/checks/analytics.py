"""Analytics for the weekly and monthly reports: plain functions, no Airflow.

Traffic: the Plausible Stats API v2 queries, or GA4 runReport requests, for a period and the
period before; their answers become one CheckResult (analytics.<kind>.traffic) whose
evidence carries what the report shows (totals with the change in percent, visitors and
page views per day, top pages and sources, goal conversions, events). Answers are read
defensively: Plausible's metrics are positional, GA4's values are strings and its `rows`
is absent when there is no data; a day without a row counts as zero. A value that is not a
finite number (NaN, Infinity, also as the strings "NaN", "Infinity") is set aside where it is
read: counted as zero, named in evidence["not_finite"], and the result is a warn saying so.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Callable

from maintenance.checks.fields import listed, not_finite, number
from maintenance.results import CheckResult


def period_days(start: datetime, end: datetime) -> list[date]:
    return [(start + timedelta(days=i)).date() for i in range((end - start).days)]


def change_pct(current: float | None, previous: float | None) -> float | None:
    """Change against the period before, in percent; None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return round(100.0 * (current - previous) / previous, 1)


def metric(value: Any, where: str, rejected: list[str]) -> float:
    """A provider's metric value as a number (GA4 sends strings); one that is not finite is
    recorded in `rejected` as "where = value" and counts as 0."""
    if not_finite(value):
        rejected.append(f"{where} = {str(value)[:24]}")
    return number(value)


def not_finite_warning(result: CheckResult, rejected: list[str],
                       what: str = "value(s) not a finite number, counted as 0") -> CheckResult:
    """The result, marked when values were set aside: warn (unless worse), named in its evidence."""
    if rejected:
        result.evidence["not_finite"] = rejected[:50]
        result.metrics["not_finite"] = len(rejected)
        result.summary += f"; {len(rejected)} {what}: " + "; ".join(rejected[:5])
        if result.status == "ok":
            result.status, result.reason = "warn", "not_finite"
    return result


def _total(key: str, label: str, value: float | None, previous: float | None, unit: str = "",
           digits: int = 0) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "previous": previous,
            "change_pct": change_pct(value, previous), "unit": unit, "digits": digits}


def traffic_result(kind: str, source: str, start: datetime, end: datetime, totals: list[dict[str, Any]],
                   daily: list[dict[str, Any]], **tables: list[dict[str, Any]]) -> CheckResult:
    parts = []
    for total in totals[:4]:
        text = f"{total['label'].lower()} {total['value']:,.{total['digits']}f}{total['unit']}"
        if total["change_pct"] is not None:
            text += f" ({total['change_pct']:+.1f}%)"
        parts.append(text)
    period = "week" if kind == "weekly" else "month"
    return CheckResult(
        check=f"analytics.{kind}.traffic", group="analytics", status="ok", critical=False, provider=source,
        summary=f"{source}: " + ", ".join(parts) + f" against the {period} before",
        metrics={t["key"]: t["value"] for t in totals} | {f"{t['key']}_change_pct": t["change_pct"] for t in totals},
        evidence={"source": source, "start": start.isoformat(), "end": end.isoformat(), "totals": totals,
                  "daily": daily, **tables})


# -- Plausible Stats API v2 ---------------------------------------------------------------------------
PLAUSIBLE_TOTALS = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]


def plausible_queries(site_id: str, start: datetime, end: datetime, top: int) -> dict[str, dict[str, Any]]:
    """The request bodies of POST /api/v2/query for a period [start, end) and the one before."""
    last = end - timedelta(days=1)
    span = end - start
    current = [f"{start:%Y-%m-%d}", f"{last:%Y-%m-%d}"]
    previous = [f"{start - span:%Y-%m-%d}", f"{last - span:%Y-%m-%d}"]

    def body(date_range: list[str], metrics: list[str], dimensions: list[str] | None = None,
             order: str | None = None, limit: int | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"site_id": site_id, "date_range": date_range, "metrics": metrics}
        if dimensions:
            query["dimensions"] = dimensions
        if order:
            query["order_by"] = [[order, "desc"]]
        if limit:
            query["pagination"] = {"limit": limit, "offset": 0}
        return query

    return {
        "totals": body(current, PLAUSIBLE_TOTALS),
        "previous_totals": body(previous, PLAUSIBLE_TOTALS),
        "daily": body(current, ["visitors", "pageviews"], ["time:day"]),
        "pages": body(current, ["visitors", "pageviews"], ["event:page"], "pageviews", top),
        "sources": body(current, ["visitors"], ["visit:source"], "visitors", top),
        "goals": body(current, ["visitors", "events", "conversion_rate"], ["event:goal"], "visitors", top),
        "previous_goals": body(previous, ["visitors"], ["event:goal"]),
    }


def _plausible_rows(answer: dict[str, Any], metrics: list[str], name: str = "",
                    rejected: list[str] | None = None) -> list[tuple[list[Any], dict[str, float]]]:
    rejected = [] if rejected is None else rejected
    rows = []
    for row in listed(answer.get("results")):
        if not isinstance(row, dict):
            continue
        values, dims = listed(row.get("metrics")), listed(row.get("dimensions"))
        where = f"{name} {dims[0]}".strip() if dims else name
        rows.append((dims, {m: metric(values[i], f"{where}: {m}", rejected) if i < len(values) else 0.0
                            for i, m in enumerate(metrics)}))
    return rows


def from_plausible(kind: str, start: datetime, end: datetime, answers: dict[str, dict[str, Any]],
                   queries: dict[str, dict[str, Any]]) -> CheckResult:
    rejected: list[str] = []
    parsed = {name: _plausible_rows(answers[name], queries[name]["metrics"], name, rejected) for name in queries
              if name in answers}

    def rows(name: str) -> list[tuple[list[Any], dict[str, float]]]:
        return parsed.get(name, [])

    def totals_of(name: str) -> dict[str, float] | None:
        found = rows(name)
        return found[0][1] if found else None

    now, before = totals_of("totals") or {}, totals_of("previous_totals") or {}
    conversions = sum(v["visitors"] for _, v in rows("goals"))
    previous_conversions = sum(v["visitors"] for _, v in rows("previous_goals"))
    totals = [
        _total("visitors", "Visitors", now.get("visitors", 0.0), before.get("visitors")),
        _total("pageviews", "Page views", now.get("pageviews", 0.0), before.get("pageviews")),
        _total("bounce_rate", "Bounce rate", now.get("bounce_rate", 0.0), before.get("bounce_rate"), "%", 1),
        _total("visit_duration_s", "Visit duration", now.get("visit_duration", 0.0), before.get("visit_duration"),
               " s", 0),
        _total("visits", "Visits", now.get("visits", 0.0), before.get("visits")),
        _total("conversions", "Goal conversions", conversions, previous_conversions if answers.get("previous_goals")
               else None),
    ]
    per_day = {str(d[0])[:10]: v for d, v in rows("daily") if d}
    daily = [{"date": day.isoformat(), "visitors": per_day.get(day.isoformat(), {}).get("visitors", 0.0),
              "pageviews": per_day.get(day.isoformat(), {}).get("pageviews", 0.0)} for day in period_days(start, end)]
    return not_finite_warning(traffic_result(
        kind, "plausible", start, end, totals, daily,
        top_pages=[{"page": str(d[0]), "visitors": v["visitors"], "pageviews": v["pageviews"]} for d, v in rows("pages") if d],
        top_sources=[{"source": str(d[0]), "visitors": v["visitors"]} for d, v in rows("sources") if d],
        goals=[{"goal": str(d[0]), "visitors": v["visitors"], "events": v["events"],
                "conversion_rate": v["conversion_rate"]} for d, v in rows("goals") if d],
    ), rejected)


# -- GA4 Data API runReport -----------------------------------------------------------------------------
GA4_TOTALS = ["activeUsers", "screenPageViews", "keyEvents", "eventCount"]


def ga4_requests(start: datetime, end: datetime, top: int) -> dict[str, dict[str, Any]]:
    last = end - timedelta(days=1)
    span = end - start
    current = [{"startDate": f"{start:%Y-%m-%d}", "endDate": f"{last:%Y-%m-%d}"}]
    previous = [{"startDate": f"{start - span:%Y-%m-%d}", "endDate": f"{last - span:%Y-%m-%d}"}]

    def body(ranges: list[dict[str, str]], metrics: list[str], dimension: str | None = None,
             order: str | None = None, limit: int | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"dateRanges": ranges, "metrics": [{"name": m} for m in metrics]}
        if dimension:
            request["dimensions"] = [{"name": dimension}]
        if order:
            request["orderBys"] = [{"metric": {"metricName": order}, "desc": True}]
        if limit:
            request["limit"] = limit
        return request

    return {
        "totals": body(current, GA4_TOTALS),
        "previous_totals": body(previous, GA4_TOTALS),
        "daily": body(current, ["activeUsers", "screenPageViews"], "date"),
        "events": body(current, ["eventCount", "keyEvents"], "eventName", "eventCount", top),
        "pages": body(current, ["screenPageViews", "activeUsers"], "pagePath", "screenPageViews", top),
        "sources": body(current, ["activeUsers"], "sessionSource", "activeUsers", top),
    }


def _ga4_rows(answer: dict[str, Any], name: str = "",
              rejected: list[str] | None = None) -> list[tuple[list[str], dict[str, float]]]:
    """(dimension values, {metric: number}) per row; metric names from metricHeaders (strings
    converted); no `rows` key means no data."""
    rejected = [] if rejected is None else rejected
    names = [str(h.get("name")) for h in listed(answer.get("metricHeaders")) if isinstance(h, dict) and h.get("name")]
    rows = []
    for row in listed(answer.get("rows")):
        if not isinstance(row, dict):
            continue
        dims = [str(d.get("value", "")) for d in listed(row.get("dimensionValues")) if isinstance(d, dict)]
        values = [d.get("value") if isinstance(d, dict) else None for d in listed(row.get("metricValues"))]
        where = f"{name} {dims[0]}".strip() if dims else name
        rows.append((dims, {n: metric(values[i], f"{where}: {n}", rejected) if i < len(values) else 0.0
                            for i, n in enumerate(names)}))
    return rows


def from_ga4(kind: str, start: datetime, end: datetime, answers: dict[str, dict[str, Any]]) -> CheckResult:
    rejected: list[str] = []
    parsed = {name: _ga4_rows(answer, name, rejected) for name, answer in answers.items()}

    def totals_of(name: str) -> dict[str, float] | None:
        found = parsed[name]
        return found[0][1] if found else None

    # No rows: GA4 had no data in that range, i.e. zero (the change is then not computable).
    now, before = totals_of("totals") or {}, totals_of("previous_totals") or {}
    prev: Callable[[str], float] = lambda m: before.get(m, 0.0)  # noqa: E731
    totals = [
        _total("visitors", "Active users", now.get("activeUsers", 0.0), prev("activeUsers")),
        _total("pageviews", "Page views", now.get("screenPageViews", 0.0), prev("screenPageViews")),
        _total("conversions", "Key events", now.get("keyEvents", 0.0), prev("keyEvents")),
        _total("events", "Events", now.get("eventCount", 0.0), prev("eventCount")),
    ]
    per_day = {}
    for dims, values in parsed["daily"]:
        if dims and len(dims[0]) == 8:   # GA4's date dimension: YYYYMMDD
            per_day[f"{dims[0][:4]}-{dims[0][4:6]}-{dims[0][6:]}"] = values
    daily = [{"date": day.isoformat(), "visitors": per_day.get(day.isoformat(), {}).get("activeUsers", 0.0),
              "pageviews": per_day.get(day.isoformat(), {}).get("screenPageViews", 0.0)}
             for day in period_days(start, end)]
    return not_finite_warning(traffic_result(
        kind, "ga4", start, end, totals, daily,
        top_pages=[{"page": d[0], "visitors": v.get("activeUsers", 0.0), "pageviews": v.get("screenPageViews", 0.0)}
                   for d, v in parsed["pages"] if d],
        top_sources=[{"source": d[0] or "(direct)", "visitors": v.get("activeUsers", 0.0)}
                     for d, v in parsed["sources"] if d],
        events=[{"event": d[0], "count": v.get("eventCount", 0.0), "key_events": v.get("keyEvents", 0.0)}
                for d, v in parsed["events"] if d],
    ), rejected)


# -- the app's own figures (MongoDB aggregation pipelines) -------------------------------------------
# Every pipeline matches the period and the one before it on the configured time field and
# groups in the database by UTC day (and currency, event, action...): only the groups travel.
def _day(field: str) -> dict[str, Any]:
    return {"$dateToString": {"format": "%Y-%m-%d", "date": f"${field}"}}


def _match(field: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"$match": {field: {"$gte": start - (end - start), "$lt": end}}}


def app_pipelines(app: Any, start: datetime, end: datetime) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """{metric: (collection, pipeline)} for the configured metrics of `analytics.app`."""
    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if app.signups is not None:
        s = app.signups
        found["signups"] = (s.collection, [_match(s.time_field, start, end), {"$group": {
            "_id": {"day": _day(s.time_field)}, "count": {"$sum": 1}}}])
    if app.donations is not None:
        d = app.donations
        refund: Any = {"$in": [f"${d.status_field}", list(d.refund_statuses)]} if d.status_field else False
        found["donations"] = (d.collection, [_match(d.time_field, start, end), {"$group": {
            "_id": {"day": _day(d.time_field), "currency": f"${d.currency_field}", "refund": refund},
            "count": {"$sum": 1}, "sum": {"$sum": f"${d.amount_field}"}}}])
    if app.registrations is not None:
        r = app.registrations
        found["registrations"] = (r.collection, [_match(r.time_field, start, end), {"$group": {
            "_id": {"day": _day(r.time_field), "event": f"${r.event_field}"}, "count": {"$sum": 1}}}])
    if app.admin_actions is not None:
        a = app.admin_actions
        found["admin_actions"] = (a.collection, [_match(a.time_field, start, end), {"$group": {
            "_id": {"day": _day(a.time_field), "action": f"${a.action_field}", "user": f"${a.user_field}"},
            "count": {"$sum": 1}}}])
    return found


def _split(groups: list[dict[str, Any]], start: datetime, rejected: list[str] | None = None,
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(groups of the period, groups of the period before), by their day. A group whose count or
    sum is not a finite number (one NaN or Infinity amount makes its whole $sum so) is set aside
    and named in `rejected`."""
    rejected = [] if rejected is None else rejected
    first = f"{start:%Y-%m-%d}"
    current, before = [], []
    for group in groups:
        if not isinstance(group, dict):
            continue
        key = group.get("_id") if isinstance(group.get("_id"), dict) else {}
        day = key.get("day")
        if not isinstance(day, str):
            continue   # documents without a usable time field were grouped under null
        bad = [f"{name} = {str(group.get(name))[:24]}" for name in ("count", "sum") if not_finite(group.get(name))]
        if bad:
            labels = " ".join(str(v)[:40] for k, v in key.items() if k not in ("day", "refund") and v is not None)
            rejected.append(f"{day}{' ' + labels if labels else ''}: {', '.join(bad)}")
            continue
        (current if day >= first else before).append({**key, "count": int(number(group.get("count"))),
                                                       "sum": number(group.get("sum"))})
    return current, before


def anomaly(label: str, current: float, previous: float, factor: float, min_count: int, period: str) -> str | None:
    """'signups down 85% (12 against 80 the week before)' when past the factor either way."""
    if max(current, previous) < min_count or max(current, previous) == 0:
        return None
    if previous and current * factor <= previous:
        return f"{label} down {100 * (previous - current) / previous:.0f}% ({current:,.0f} against {previous:,.0f} the {period} before)"
    if current >= previous * factor:
        rise = f"up {100 * (current - previous) / previous:.0f}%" if previous else "up from none"
        return f"{label} {rise} ({current:,.0f} against {previous:,.0f} the {period} before)"
    return None


def _daily(rows: list[dict[str, Any]], days: list[date], value: str = "count") -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["day"]] = totals.get(row["day"], 0) + row[value]
    return [{"date": d.isoformat(), "count": totals.get(d.isoformat(), 0)} for d in days]


def app_result(kind: str, metric: str, groups: list[dict[str, Any]], app: Any, start: datetime,
               end: datetime) -> CheckResult:
    """One metric's result from its pipeline's groups: totals against the period before, per
    day, the breakdowns, and an anomaly (status warn, for the digest) past the factor."""
    period = "week" if kind == "weekly" else "month"
    days = period_days(start, end)
    rejected: list[str] = []
    current, before = _split(groups, start, rejected)
    factor, floor = app.anomaly_factor, app.anomaly_min_count
    anomalies: list[str] = []
    evidence: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    metrics: dict[str, Any] = {}
    if metric == "donations":
        divisor = app.donations.amount_divisor
        currencies = sorted({str(r.get("currency")) for r in current + before})
        rows = []
        for currency in currencies:
            paid = [r for r in current if str(r.get("currency")) == currency and not r.get("refund")]
            paid_before = [r for r in before if str(r.get("currency")) == currency and not r.get("refund")]
            refunds = [r for r in current if str(r.get("currency")) == currency and r.get("refund")]
            count, total = sum(r["count"] for r in paid), sum(r["sum"] for r in paid) / divisor
            previous = sum(r["sum"] for r in paid_before) / divisor
            rows.append({"currency": currency, "count": count, "sum": round(total, 2),
                         "average": round(total / count, 2) if count else None, "previous_sum": round(previous, 2),
                         "previous_count": sum(r["count"] for r in paid_before), "change_pct": change_pct(total, previous),
                         "refunds": sum(r["count"] for r in refunds),
                         "refunded_sum": round(sum(r["sum"] for r in refunds) / divisor, 2)})
            found = anomaly(f"donations in {currency}", count, rows[-1]["previous_count"], factor, floor, period)
            if found:
                anomalies.append(found)
        count = sum(r["count"] for r in rows)
        metrics = {"count": count, "previous": sum(r["previous_count"] for r in rows),
                   "refunds": sum(r["refunds"] for r in rows)}
        daily = []
        for day in days:
            for currency in currencies:
                mine = [r for r in current if r["day"] == day.isoformat() and str(r.get("currency")) == currency
                        and not r.get("refund")]
                daily.append({"date": day.isoformat(), "currency": currency,
                              "count": sum(r["count"] for r in mine), "sum": round(sum(r["sum"] for r in mine) / divisor, 2)})
        evidence.update(currencies=rows, daily=daily)
        sums = ", ".join(f"{r['currency']} {r['sum']:,.2f} ({r['count']})" for r in rows) or "none"
        summary = f"{count} donation(s): {sums}; {metrics['refunds']} refund(s) apart"
    else:
        count, previous = sum(r["count"] for r in current), sum(r["count"] for r in before)
        metrics = {"count": count, "previous": previous, "change_pct": change_pct(count, previous)}
        label = {"signups": "membership signups", "registrations": "event registrations",
                 "admin_actions": "admin actions"}[metric]
        found = anomaly(label, count, previous, factor, floor, period)
        if found:
            anomalies.append(found)
        evidence["daily"] = _daily(current, days)
        change = f" ({metrics['change_pct']:+.1f}%)" if metrics["change_pct"] is not None else ""
        summary = f"{count} {label}{change} against {previous} the {period} before"
        if metric == "registrations":
            events: dict[str, list[int]] = {}
            for rows_, slot in ((current, 0), (before, 1)):
                for r in rows_:
                    events.setdefault(str(r.get("event")), [0, 0])[slot] += r["count"]
            evidence["events"] = sorted(({"event": e, "count": c, "previous": p} for e, (c, p) in events.items()),
                                        key=lambda e: -e["count"])
        if metric == "admin_actions":
            by_action: dict[str, int] = {}
            by_user: dict[str, int] = {}
            for r in current:
                by_action[str(r.get("action"))] = by_action.get(str(r.get("action")), 0) + r["count"]
                by_user[str(r.get("user"))] = by_user.get(str(r.get("user")), 0) + r["count"]
            evidence["by_action"] = [{"action": a, "count": c} for a, c in sorted(by_action.items(), key=lambda i: -i[1])]
            evidence["by_user"] = [{"user": u, "count": c} for u, c in sorted(by_user.items(), key=lambda i: -i[1])]
    evidence["anomalies"] = anomalies
    if anomalies:
        summary += "; ANOMALY: " + "; ".join(anomalies)
    result = CheckResult(check=f"analytics.{kind}.{metric}", group="analytics", status="warn" if anomalies else "ok",
                         reason="anomaly" if anomalies else None, critical=False, provider="app",
                         summary=summary, metrics=metrics, evidence=evidence)
    return not_finite_warning(result, rejected, "group(s) left out: a count or sum not a finite number")
