"""Gatus-style endpoint conditions: parse at config load, evaluate per check.

    [STATUS] == 200                 [RESPONSE_TIME] < 1500          (milliseconds)
    [BODY] == pat(*Welcome*)        [BODY].data[0].id == 1          (JSON path)
    len([BODY].items) > 0           has([BODY].errors) == false
    [STATUS] == any(200, 301)       [CERTIFICATE_EXPIRATION] > 14d  (s, m, h, d)
    [CONNECTED] == true             [IP] == 203.0.113.7

A failed condition is described with the value seen: "[STATUS] (500) == 200".
"""

from __future__ import annotations

import fnmatch
import functools
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from maintenance.durations import format_duration, parse_duration

PLACEHOLDERS = ("STATUS", "RESPONSE_TIME", "BODY", "CERTIFICATE_EXPIRATION", "CONNECTED", "IP")
# Longest operators first so "<=" is not read as "<".
OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERED = {"<", "<=", ">", ">="}
_MISSING = object()
_LEFT = re.compile(
    r"^(?:(?P<func>len|has)\((?P<inner>.+)\)|(?P<plain>.+))$"
)
_PLACEHOLDER = re.compile(r"^\[(?P<name>[A-Z_]+)\](?P<path>.*)$")
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_decode_json = json.JSONDecoder().decode   # json.loads of a str, minus its wrapper


class ConditionError(ValueError):
    """A condition that does not parse; the message says why."""


@dataclass(frozen=True)
class Condition:
    text: str
    placeholder: str               # STATUS, BODY, ...
    path: tuple[str | int, ...]    # JSON path below [BODY]
    function: str | None           # len / has / None
    op: str
    right_kind: str                # literal / pat / any
    right: tuple[str, ...]         # one value, or the any() values
    right_number: float | None     # numeric right side (durations in seconds)
    right_text: str = ""           # the right-hand side as written, for descriptions

    @functools.cached_property
    def left_label(self) -> str:
        label = "[" + self.placeholder + "]" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path
        )
        return f"{self.function}({label})" if self.function else label

    @functools.cached_property
    def right_numbers(self) -> tuple[float | None, ...]:
        """Each right-hand value as a number (None if it is not one), parsed once, not per check."""
        return tuple(_number(value) for value in self.right)

    @functools.cached_property
    def holds(self) -> Callable[[Observation], bool]:
        """This condition as one function of an observation, built once: the sweep's fast path.
        Same answers as evaluate() (tests/unit/test_conditions_fast_path.py)."""
        return _compile(self)


@dataclass
class Observation:
    """What one probe of an endpoint saw; None where it could not be measured."""

    status: int | None = None
    response_ms: float | None = None
    body: str | None = None
    certificate_expiration_s: float | None = None
    connected: bool = False
    ip: str | None = None
    _json: Any = field(default=_MISSING, repr=False)

    def json_body(self) -> Any:
        if self._json is _MISSING:
            try:
                self._json = _decode_json(self.body or "")
            except (ValueError, RecursionError):   # not JSON, or nested deeper than Python recurses
                self._json = None
        return self._json


def _split_operator(text: str) -> tuple[str, str, str]:
    for op in OPERATORS:
        marker = f" {op} "
        if marker in text:
            left, right = text.split(marker, 1)
            return left.strip(), op, right.strip()
    raise ConditionError(f"no operator in {text!r}: expected one of {' '.join(OPERATORS)} with spaces around it")


def _parse_path(path_text: str, text: str) -> tuple[str | int, ...]:
    path: list[str | int] = []
    pos = 0
    for match in _PATH_TOKEN.finditer(path_text):
        if match.start() != pos:
            break
        path.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if pos != len(path_text):
        raise ConditionError(f"bad JSON path {path_text!r} in {text!r}: use [BODY].a.b[0].c")
    return tuple(path)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)  # configs are re-read on every DAG parse; conditions repeat
def parse_condition(text: str) -> Condition:
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("empty condition")
    text = text.strip()
    left, op, right = _split_operator(text)
    left_match = _LEFT.match(left)
    function = left_match.group("func")
    operand = (left_match.group("inner") if function else left_match.group("plain")).strip()
    ph = _PLACEHOLDER.match(operand)
    if not ph or ph.group("name") not in PLACEHOLDERS:
        raise ConditionError(
            f"unknown placeholder {operand!r} in {text!r}: use one of "
            + ", ".join(f"[{p}]" for p in PLACEHOLDERS)
        )
    name, path = ph.group("name"), _parse_path(ph.group("path"), text)
    if path and name != "BODY":
        raise ConditionError(f"only [BODY] takes a JSON path, in {text!r}")
    if function and name != "BODY":
        raise ConditionError(f"{function}() applies to [BODY] only, in {text!r}")

    right_kind, values = "literal", (right,)
    func_right = re.fullmatch(r"(pat|any)\((.*)\)", right)
    if func_right:
        right_kind = func_right.group(1)
        inner = func_right.group(2)
        values = (inner,) if right_kind == "pat" else tuple(v.strip() for v in inner.split(","))
        if op not in ("==", "!="):
            raise ConditionError(f"{right_kind}() works with == and != only, in {text!r}")
        if any(v == "" for v in values):
            raise ConditionError(f"empty argument to {right_kind}() in {text!r}")
    elif right == "":
        raise ConditionError(f"missing right-hand value in {text!r}")

    number = None
    if right_kind == "literal":
        if name == "CERTIFICATE_EXPIRATION" and not function:
            try:
                number = parse_duration(right).total_seconds()
            except ValueError:
                raise ConditionError(
                    f"[CERTIFICATE_EXPIRATION] needs a duration such as 336h or 14d, got {right!r} in {text!r}"
                ) from None
        else:
            number = _number(right)
        if op in _ORDERED and number is None:
            raise ConditionError(f"{op} needs a number on the right, got {right!r} in {text!r}")
    if name == "CONNECTED" and right_kind == "literal" and right.lower() not in ("true", "false"):
        raise ConditionError(f"[CONNECTED] compares with true or false, in {text!r}")
    return Condition(text, name, path, function, op, right_kind, values, number, right)


def _resolve(cond: Condition, obs: Observation) -> Any:
    name = cond.placeholder
    if name == "STATUS":
        return obs.status
    if name == "RESPONSE_TIME":
        return None if obs.response_ms is None else round(obs.response_ms)
    if name == "CERTIFICATE_EXPIRATION":
        return obs.certificate_expiration_s
    if name == "CONNECTED":
        return obs.connected
    if name == "IP":
        return obs.ip
    # BODY
    if not cond.path:
        value: Any = obs.body
    else:
        value = obs.json_body()
        for part in cond.path:
            if isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value):
                value = value[part]
            elif isinstance(part, str) and isinstance(value, dict) and part in value:
                value = value[part]
            else:
                value = _MISSING
                break
    if cond.function == "has":
        return value is not _MISSING and value is not None
    if cond.function == "len":
        if value is _MISSING or value is None:
            return _MISSING
        return len(value) if isinstance(value, (str, list, dict)) else len(str(value))
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _shown(cond: Condition, value: Any, clean: Callable[[str], str] | None = None) -> str:
    if value is _MISSING:
        return "missing"
    if value is None:
        return "n/a"
    if cond.placeholder == "CERTIFICATE_EXPIRATION" and not cond.function:
        return format_duration(value)
    shown = _text(value)
    if clean is not None:
        shown = clean(shown)   # before the cut: a secret cut in two would no longer be found
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _equals(value: Any, expected: str, expected_number: float | None) -> bool:
    if expected_number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == expected_number   # exact, also for an int too large for a float
    return _text(value).lower() == expected.lower() if isinstance(value, bool) else _text(value) == expected


# Python compares int and float exactly, so a 4,000-digit JSON number needs no float() (which overflows).
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _holds(cond: Condition, value: Any) -> bool:
    if value is _MISSING or value is None:
        # Nothing was observed (no response, missing JSON key): the condition cannot hold.
        return False
    if cond.op in _ORDERED:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else _number(_text(value))
        return number is not None and _COMPARE[cond.op](number, cond.right_number)
    if cond.right_kind == "pat":
        passed = fnmatch.fnmatchcase(_text(value), cond.right[0])
    elif cond.right_kind == "any":
        passed = any(_equals(value, v, n) for v, n in zip(cond.right, cond.right_numbers))
    elif cond.placeholder == "CERTIFICATE_EXPIRATION" and cond.right_number is not None:
        passed = value == cond.right_number
    else:
        passed = _equals(value, cond.right[0], cond.right_numbers[0])
    return not passed if cond.op == "!=" else passed


def _compile(cond: Condition) -> Callable[[Observation], bool]:
    number = cond.right_number
    if cond.function is None and cond.right_kind == "literal" and number is not None \
            and cond.placeholder in ("STATUS", "RESPONSE_TIME"):
        # The commonest conditions ([STATUS] == 200, [RESPONSE_TIME] < 1500): one comparison.
        compare = _COMPARE_ANY[cond.op]
        if cond.placeholder == "STATUS":
            def status_holds(obs: Observation) -> bool:
                value = obs.status
                return value is not None and compare(value, number)
            return status_holds

        def response_time_holds(obs: Observation) -> bool:
            value = obs.response_ms
            return value is not None and compare(round(value), number)
        return response_time_holds

    def generic_holds(obs: Observation) -> bool:
        return _holds(cond, _resolve(cond, obs))
    return generic_holds


_COMPARE_ANY = {**_COMPARE, "==": operator.eq, "!=": operator.ne}


def describe(cond: Condition, value: Any, clean: Callable[[str], str] | None = None) -> str:
    """The condition with the value seen; `clean` (redaction) applies to the value before it
    is cut to 80 characters."""
    return f"{cond.left_label} ({_shown(cond, value, clean)}) {cond.op} {cond.right_text}"


def failure(cond: Condition, obs: Observation, clean: Callable[[str], str] | None = None) -> str | None:
    """None when the condition holds, else its description with the value seen (the fast path)."""
    return None if cond.holds(obs) else describe(cond, _resolve(cond, obs), clean)


def evaluate(cond: Condition, obs: Observation) -> tuple[bool, str]:
    """(passed, description); the description carries the value seen."""
    value = _resolve(cond, obs)
    return _holds(cond, value), describe(cond, value)
