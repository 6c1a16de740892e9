"""Performance review (plain functions): Core Web Vitals from CrUX / PSI with their trend, our
own probes' p50/p95 this period against the last, and Vercel's production deployments.
Facts: next-anchors.md section 4, provider-apis.md section 6.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from maintenance.checks.uptime_report import percentile
from maintenance.results import CheckResult

# p75 thresholds: (good at most, poor above)
THRESHOLDS = {"lcp": (2500.0, 4000.0), "inp": (200.0, 500.0), "cls": (0.1, 0.25)}
CRUX_NAMES = {"lcp": "largest_contentful_paint", "inp": "interaction_to_next_paint", "cls": "cumulative_layout_shift"}
PSI_NAMES = {"lcp": "LARGEST_CONTENTFUL_PAINT_MS", "inp": "INTERACTION_TO_NEXT_PAINT",
             "cls": "CUMULATIVE_LAYOUT_SHIFT_SCORE"}
UNITS = {"lcp": "ms", "inp": "ms", "cls": ""}


def _number(value: Any) -> float | None:
    """CrUX sends CLS as a string ("0.05") and the rest as numbers; tolerate both everywhere."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rate(metric: str, value: float) -> str:
    good, poor = THRESHOLDS[metric]
    return "good" if value <= good else "poor" if value > poor else "needs-improvement"


def crux_metrics(body: Any) -> dict[str, float]:
    """p75 per metric from a CrUX queryRecord answer (missing metrics are left out)."""
    metrics = ((body or {}).get("record") or {}).get("metrics") or {} if isinstance(body, dict) else {}
    out = {}
    for short, name in CRUX_NAMES.items():
        value = _number(((metrics.get(name) or {}).get("percentiles") or {}).get("p75"))
        if value is not None:
            out[short] = value
    return out


def psi_metrics(body: Any) -> dict[str, float]:
    """p75 per metric from PageSpeed Insights field data; its CLS percentile is CLS x 100."""
    if not isinstance(body, dict):
        return {}
    experience = body.get("loadingExperience") or {}
    if not (experience.get("metrics")):
        experience = body.get("originLoadingExperience") or {}
    metrics = experience.get("metrics") or {}
    out = {}
    for short, name in PSI_NAMES.items():
        value = _number((metrics.get(name) or {}).get("percentile"))
        if value is not None:
            out[short] = value / 100 if short == "cls" else value
    return out


def history_p75s(body: Any) -> dict[str, list[float | None]]:
    """Per metric, the weekly p75 series (oldest first; None where CrUX had too little data)."""
    metrics = ((body or {}).get("record") or {}).get("metrics") or {} if isinstance(body, dict) else {}
    out = {}
    for short, name in CRUX_NAMES.items():
        series = ((metrics.get(name) or {}).get("percentilesTimeseries") or {}).get("p75s")
        if isinstance(series, list):
            out[short] = [_number(v) for v in series]
    return out


def trend(series: list[float | None], step: int) -> tuple[float | None, float | None]:
    """(latest, the value `step` periods before it), skipping missing periods."""
    known = [(i, v) for i, v in enumerate(series) if v is not None]
    if not known:
        return None, None
    last_index, last = known[-1]
    before = [v for i, v in known if i <= last_index - step]
    return last, (before[-1] if before else None)


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric == "cls" else f"{value:.0f} {UNITS[metric]}"


def cwv_result(target: str, metrics: dict[str, float], source: str,
               history: dict[str, list[float | None]] | None, step: int, runbook: str) -> CheckResult:
    """Rated p75s: any poor fails; needs-improvement warns (digest); the trend is in the summary."""
    check = f"performance.cwv.{target.split('://', 1)[-1].rstrip('/')}"
    if not metrics:
        return CheckResult(check=check, target=target, group="performance", status="warn", reason="no_data",
                           critical=False, runbook=runbook,
                           summary=f"no Core Web Vitals field data for {target} (CrUX and PSI have no record)")
    ratings = {m: rate(m, v) for m, v in metrics.items()}
    parts, trends = [], {}
    for metric, value in metrics.items():
        text = f"{metric.upper()} {_fmt(metric, value)} {ratings[metric]}"
        last, before = trend((history or {}).get(metric, []), step)
        if last is not None and before is not None:
            trends[metric] = {"now": last, "before": before}
            change = (last - before) / before * 100 if before else 0.0
            text += f" ({'+' if change >= 0 else ''}{change:.0f}% vs the period before)"
        parts.append(text)
    worst = "poor" if "poor" in ratings.values() else "needs-improvement" if "needs-improvement" in ratings.values() \
        else "good"
    common = dict(check=check, target=target, group="performance", runbook=runbook, provider="vercel",
                  metrics={f"{m}_p75": v for m, v in metrics.items()},
                  evidence={"ratings": ratings, "source": source, "trend": trends})
    summary = f"{target} ({source}): " + ", ".join(parts)
    if worst == "poor":
        return CheckResult(status="fail", reason="poor_web_vitals", summary=summary, **common)
    if worst == "needs-improvement":
        return CheckResult(status="warn", reason="needs_improvement", summary=summary, critical=False, **common)
    return CheckResult(status="ok", summary=summary, critical=False, **common)


# -- our own probes ---------------------------------------------------------------------------------------
def probe_review(this: list[dict[str, Any]], last: list[dict[str, Any]], endpoints: list[str], *, factor: float,
                 min_samples: int, slowest: int, period: str, deployments: list[dict[str, Any]],
                 runbook: str) -> list[CheckResult]:
    """Per endpoint p50/p95 this period vs the last (stored uptime results); a p95 above
    `factor` x last period's is a regression, matched with the deployments around its start."""
    def times(rows: list[dict[str, Any]], name: str) -> list[tuple[datetime, float]]:
        return [(r["checked_at"], float(r["metrics"]["response_ms"])) for r in rows
                if r["check_name"] == name and r["status"] != "skipped" and not r.get("in_maintenance")
                and isinstance((r.get("metrics") or {}).get("response_ms"), (int, float))]

    results, table = [], []
    for name in endpoints:
        now_t, before_t = times(this, name), times(last, name)
        check = f"performance.probe.{name}"
        if len(now_t) < min_samples and before_t:   # probed before, hardly now: the monitor, not the site
            results.append(CheckResult(check=check, group="performance", status="warn", reason="no_data",
                                       critical=False, runbook=runbook,
                                       summary=f"{name}: only {len(now_t)} probe(s) this {period} against "
                                               f"{len(before_t)} the {period} before, too few to judge "
                                               "(is uptime_monitor running?)"))
            continue
        if len(now_t) < min_samples:   # a new endpoint (or a first start): nothing to judge yet, nothing to say
            results.append(CheckResult(check=check, group="performance", status="skipped", reason="no_data",
                                       critical=False, runbook=runbook,
                                       summary=f"skipped: {name}: {len(now_t)} probe(s) this {period}, too few "
                                               "to judge yet"))
            continue
        values = [v for _, v in now_t]
        p50, p95 = percentile(values, 50), percentile(values, 95)
        b50 = percentile([v for _, v in before_t], 50) if len(before_t) >= min_samples else None
        b95 = percentile([v for _, v in before_t], 95) if len(before_t) >= min_samples else None
        table.append((name, p95))
        metrics = {"p50_ms": p50, "p95_ms": p95, "p50_last_ms": b50, "p95_last_ms": b95, "samples": len(values)}
        text = f"{name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms this {period}"
        if b95 is None:
            results.append(CheckResult(check=check, group="performance", status="ok", critical=False, runbook=runbook,
                                       metrics=metrics, summary=text + f" (no last {period} to compare)"))
            continue
        text += f" (last {period}: p50 {b50:.0f} ms, p95 {b95:.0f} ms)"
        if p95 > factor * b95:
            threshold = factor * b95
            start = next((t for t, v in sorted(now_t) if v > threshold), None)
            near = [d for d in deployments if start and abs(_deploy_time(d) - start) <= timedelta(hours=6)]
            around = "; deployments around its start: " + ", ".join(
                f"{d.get('url') or d.get('uid')} ({_deploy_time(d):%Y-%m-%d %H:%M}, {d.get('readyState')})"
                for d in near) if near else "; no deployment around its start"
            results.append(CheckResult(
                check=check, group="performance", status="warn", reason="regression", critical=False, runbook=runbook,
                metrics=metrics, evidence={"regression_start": start.isoformat() if start else None,
                                           "deployments": [d.get("uid") for d in near]},
                summary=f"{text}: p95 regressed {p95 / b95:.1f}x (flagged above {factor:g}x) since "
                        f"{start:%Y-%m-%d %H:%M}{around}" if start else f"{text}: p95 regressed {p95 / b95:.1f}x"))
        else:
            results.append(CheckResult(check=check, group="performance", status="ok", critical=False, runbook=runbook,
                                       metrics=metrics, summary=text))
    if table:
        top = sorted(table, key=lambda t: -t[1])[:slowest]
        results.append(CheckResult(check="performance.probe.slowest", group="performance", status="ok", critical=False,
                                   runbook=runbook, evidence={"slowest": [{"endpoint": n, "p95_ms": v} for n, v in top]},
                                   summary=f"slowest endpoints this {period} (p95): "
                                           + ", ".join(f"{n} {v:.0f} ms" for n, v in top)))
    return results


def _deploy_time(deployment: dict[str, Any]) -> datetime:
    ms = deployment.get("createdAt") or deployment.get("created") or 0
    return datetime.fromtimestamp(float(ms) / 1000, tz=timezone.utc)


# -- Vercel -------------------------------------------------------------------------------------------------
def deployments_result(deployments: list[dict[str, Any]], current: dict[str, Any] | None, period: str,
                       runbook: str, verdicts: dict[str, str] | None = None) -> CheckResult:
    """Production deployments of the period: each ERROR named with its inspector URL (the guide's
    build errors) fails; the current production deployment must be READY. `verdicts` (issue 19):
    post_deploy_verification's verdict of each deployment (healthy, regressed, build_error)."""
    state = lambda d: str(d.get("readyState") or d.get("state") or "?").upper()  # noqa: E731
    failed = [d for d in deployments if state(d) == "ERROR"]
    counts: dict[str, int] = {}
    for d in deployments:
        counts[state(d)] = counts.get(state(d), 0) + 1
    evidence = {"deployments": [{"uid": d.get("uid"), "url": d.get("url"), "state": state(d),
                                 "created": _deploy_time(d).isoformat(), "inspector": d.get("inspectorUrl"),
                                 "error": d.get("errorMessage") or d.get("errorCode"),
                                 "creator": (d.get("creator") or {}).get("username"),
                                 "verdict": (verdicts or {}).get(str(d.get("uid")))} for d in deployments[:100]],
                "current": current and {"uid": current.get("uid"), "url": current.get("url"), "state": state(current)}}
    common = dict(check="performance.vercel.deployments", group="performance", provider="vercel", runbook=runbook,
                  metrics={"deployments": len(deployments), "errors": len(failed), **{k.lower(): v for k, v in counts.items()}},
                  evidence=evidence)
    problems = [f"{d.get('url') or d.get('uid')} ERROR ({d.get('errorMessage') or d.get('errorCode') or 'build failed'}; "
                f"{d.get('inspectorUrl') or 'no inspector URL'})" for d in failed]
    if current is None:
        problems.append("no production deployment is READY")
    elif state(current) != "READY":
        problems.append(f"the current production deployment {current.get('url')} is {state(current)}")
    summary = f"{len(deployments)} production deployment(s) this {period}"
    if verdicts is not None and deployments:
        summary += f" ({_verdict_counts(deployments, verdicts)})"
    if problems:
        return CheckResult(status="fail", reason="deployment_failed", summary=f"{summary}; " + "; ".join(problems),
                           **common)
    return CheckResult(status="ok", critical=False, **common,
                       summary=f"{summary}, none failed; current production {current.get('url')} READY")


def _verdict_counts(deployments: list[dict[str, Any]], verdicts: dict[str, str]) -> str:
    """'2 healthy, 1 regressed: web-x.vercel.app, 1 not verified' (issue 19)."""
    by: dict[str, list[str]] = {}
    for d in deployments:
        by.setdefault(verdicts.get(str(d.get("uid")), "not verified"), []).append(str(d.get("url") or d.get("uid")))
    order = ["healthy", "regressed", "build_error", "not verified"]
    parts = []
    for name in sorted(by, key=lambda v: order.index(v) if v in order else len(order)):
        label = name.replace("_", " ")
        named = f": {', '.join(by[name][:5])}" if name in ("regressed", "build_error") else ""
        parts.append(f"{len(by[name])} {label}{named}")
    return "verdicts: " + ", ".join(parts)
