"""Fields read from outside (MongoDB documents, provider answers) are never trusted to be of the
type the code expects: a number may be NaN, Infinity or "NaN"; a user may be an object
({id, email}) or a list; a list may be a string. These turn such a field into what the caller
can use, or say that it cannot be used."""

from __future__ import annotations

import math
from typing import Any

# Keys that name a person or a role in an object standing for one (most telling first).
_NAMING_KEYS = ("email", "username", "name", "login", "role", "id", "_id")


def not_finite(value: Any) -> bool:
    """NaN or +-Infinity, as a number or as a string ("NaN", "Infinity", "-inf", "1e999")."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return not math.isfinite(float(value))
    except OverflowError:          # an integer of hundreds of digits: no float holds it
        return True
    except (TypeError, ValueError):
        return False


def number(value: Any) -> float:
    """A value as a finite number: strings converted ("123", "0.45"); missing, odd or not finite is 0
    (callers that must report non-finite values check not_finite() first)."""
    if value is None or value == "" or not_finite(value):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def listed(value: Any) -> list[Any]:
    """A field that should be a list: a list, else empty."""
    return value if isinstance(value, list) else []


def identities(value: Any) -> list[str]:
    """Every name a field gives a person or role: a string is one; an object ({id, email}) gives
    its naming keys' values; a list gives its items'. Compared against configured names."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [str(value[k]) for k in _NAMING_KEYS if value.get(k) not in (None, "", [], {})]
    if isinstance(value, (list, tuple)):
        return [name for item in value[:20] for name in identities(item)]
    return [str(value)]


def text(value: Any, limit: int = 200) -> str:
    """A field shown to a person: a string as is; an object by its naming keys ("ann@x.org (id 7)");
    anything else by str(); cut at `limit` characters."""
    if isinstance(value, str):
        shown = value
    elif isinstance(value, dict):
        names = identities(value)
        shown = (f"{names[0]} ({', '.join(names[1:])})" if len(names) > 1 else names[0]) if names else str(value)
    elif isinstance(value, (list, tuple)):
        shown = ", ".join(text(v, limit) for v in value[:10])
    else:
        shown = "" if value is None else str(value)
    return shown[:limit]
