"""The condition language: every placeholder, operator and function, and what a failure says."""

from __future__ import annotations

import pytest

from maintenance.conditions import ConditionError, Observation, evaluate, parse_condition

OBS = Observation(status=500, response_ms=123.4, connected=True, ip="127.0.0.1",
                  certificate_expiration_s=5 * 86400 + 60,
                  body='{"status": "ok", "data": [{"id": 1, "name": "john"}], "errors": null, "up": true}')


@pytest.mark.parametrize("text,passed,shown", [
    ("[STATUS] == 200", False, "[STATUS] (500) == 200"),
    ("[STATUS] != 200", True, "[STATUS] (500) != 200"),
    ("[STATUS] >= 500", True, None),
    ("[STATUS] < 300", False, "[STATUS] (500) < 300"),
    ("[STATUS] == any(200, 500)", True, None),
    ("[STATUS] != any(200, 500)", False, None),
    ("[RESPONSE_TIME] < 100", False, "[RESPONSE_TIME] (123) < 100"),
    ("[RESPONSE_TIME] <= 123", True, None),
    ("[RESPONSE_TIME] > 100", True, None),
    ("[BODY].status == ok", True, None),
    ("[BODY].status == UP", False, "[BODY].status (ok) == UP"),
    ("[BODY].data[0].id == 1", True, None),
    ("[BODY].data[0].name == pat(jo*)", True, None),
    ("[BODY].data[1].id == 1", False, "[BODY].data[1].id (missing) == 1"),
    ("[BODY].up == true", True, None),
    ("len([BODY].data) == 1", True, None),
    ("len([BODY].data) > 1", False, "len([BODY].data) (1) > 1"),
    ("has([BODY].errors) == false", True, None),
    ("has([BODY].status) == true", True, None),
    ("[BODY] == pat(*\"status\"*)", True, None),
    ("[BODY] == pat(*Welcome*)", False, None),
    ("[CERTIFICATE_EXPIRATION] > 4d", True, None),
    ("[CERTIFICATE_EXPIRATION] > 14d", False, "[CERTIFICATE_EXPIRATION] (5d) > 14d"),
    ("[CERTIFICATE_EXPIRATION] > 48h", True, None),
    ("[CERTIFICATE_EXPIRATION] < 8000m", True, None),
    ("[CERTIFICATE_EXPIRATION] > 3600s", True, None),
    ("[CONNECTED] == true", True, None),
    ("[IP] == 127.0.0.1", True, None),
    ("[IP] == pat(10.*)", False, "[IP] (127.0.0.1) == pat(10.*)"),
])
def test_evaluate(text, passed, shown):
    ok, description = evaluate(parse_condition(text), OBS)
    assert ok is passed, description
    if shown:
        assert description == shown


def test_nothing_observed_fails_every_condition():
    nothing = Observation()
    for text in ("[STATUS] == 200", "[STATUS] != 200", "[RESPONSE_TIME] < 10", "[BODY].a == b"):
        ok, description = evaluate(parse_condition(text), nothing)
        assert not ok, text
    ok, description = evaluate(parse_condition("[CONNECTED] == true"), nothing)
    assert not ok and description == "[CONNECTED] (false) == true"


@pytest.mark.parametrize("text,words", [
    ("[STATUS]==200", "no operator"),
    ("[STATSU] == 200", "unknown placeholder"),
    ("[STATUS].a == 1", "only [BODY]"),
    ("len([STATUS]) == 1", "[BODY] only"),
    ("[RESPONSE_TIME] < fast", "needs a number"),
    ("[STATUS] > any(1, 2)", "== and !="),
    ("[BODY] == pat()", "empty argument"),
    ("[CERTIFICATE_EXPIRATION] > 2w", "duration"),
    ("[CONNECTED] == yes", "true or false"),
    ("[BODY].a..b == 1", "bad JSON path"),
    ("[STATUS] == ", "no operator"),
])
def test_parse_errors(text, words):
    with pytest.raises(ConditionError, match=words.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        parse_condition(text)
