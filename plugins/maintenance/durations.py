"""Durations written the Gatus way: "30s", "5m", "4h", "14d" (also "1h30m")."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


MAX_SECONDS = 100 * 365 * 86400   # a century: anything longer is a typo (and overflows timedelta arithmetic)


def _bounded(seconds: float, text: object) -> timedelta:
    if not math.isfinite(seconds) or seconds > MAX_SECONDS or seconds < -MAX_SECONDS:
        raise ValueError(f"duration {str(text)[:40]!r} is out of range (at most 100 years)")
    return timedelta(seconds=seconds)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse "4h", "90s", "1h30m"; a bare number means seconds."""
    if isinstance(text, timedelta):
        return _bounded(text.total_seconds(), text)
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int):
        if abs(text) > MAX_SECONDS:
            raise ValueError(f"duration {str(text)[:40]!r} is out of range (at most 100 years)")
        return timedelta(seconds=text)
    if isinstance(text, float):
        return _bounded(text, text)
    s = str(text).strip().replace(" ", "")
    if len(s) > 64:
        raise ValueError(f"not a duration: {s[:40]!r}... (use e.g. 30s, 5m, 4h, 14d)")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return _bounded(float(s), s)
    pos, total = 0, 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 4h, 14d)")
    return _bounded(total, s)


def format_duration(seconds: float, *, exact_minutes: bool = False) -> str:
    """Short human form: 45s, 12m, 3h 5m, 4d 2h (truncated to two units).

    exact_minutes: under an hour, the seconds too ("2m 58s", not "2m"): how long an incident
    has lasted, where dropping 58 s would be a visible untruth.
    """
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h {minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m {secs}s" if exact_minutes and secs else f"{sign}{minutes}m"
    return f"{sign}{secs}s"
