"""The sweep's fast path (Condition.holds, built once per condition) answers as evaluate() does,
for every shape of condition and observation, including nothing observed and hostile values."""

from __future__ import annotations

import itertools

import pytest

from maintenance.conditions import Observation, evaluate, failure, parse_condition

CONDITIONS = [
    "[STATUS] == 200", "[STATUS] != 200", "[STATUS] < 300", "[STATUS] <= 204", "[STATUS] > 399", "[STATUS] >= 500",
    "[STATUS] == any(200, 204)", "[STATUS] != any(500, 503)", "[STATUS] == pat(2*)", "[STATUS] == 2.0e2",
    "[RESPONSE_TIME] < 1500", "[RESPONSE_TIME] <= 123", "[RESPONSE_TIME] > 100", "[RESPONSE_TIME] == 123",
    "[RESPONSE_TIME] != 123", "[RESPONSE_TIME] >= 0.5",
    "[BODY].status == ok", "[BODY].n > 5", "[BODY].n == 10", "[BODY].big > 5", "[BODY].big == 1e400",
    "len([BODY].items) == 2", "has([BODY].errors) == false", "[BODY] == pat(*ok*)", "[BODY].up == true",
    "[CERTIFICATE_EXPIRATION] > 14d", "[CONNECTED] == true", "[IP] == 127.0.0.1",
]
BIG = "9" * 4000   # an integer too large for a float
OBSERVATIONS = [
    Observation(),
    Observation(status=200, response_ms=123.4, connected=True, ip="127.0.0.1", certificate_expiration_s=30 * 86400,
                body='{"status": "ok", "n": 10, "items": [1, 2], "errors": null, "up": true, "big": %s}' % BIG),
    Observation(status=503, response_ms=1499.6, connected=True, ip="10.0.0.1", body="not json"),
    Observation(status=204, response_ms=0.4, connected=True, body='{"n": "7", "status": "OK", "up": "True"}'),
    Observation(status=302, response_ms=1500.5, connected=True, body='["x"]'),
]


@pytest.mark.parametrize("text,index", list(itertools.product(CONDITIONS, range(len(OBSERVATIONS)))))
def test_fast_path_agrees_with_evaluate(text, index):
    condition, obs = parse_condition(text), OBSERVATIONS[index]
    passed, description = evaluate(condition, obs)
    assert condition.holds(obs) is passed
    assert failure(condition, obs) == (None if passed else description)


def test_a_number_too_large_for_a_float_is_compared_not_crashed():
    obs = OBSERVATIONS[1]
    assert parse_condition("[BODY].big > 5").holds(obs)
    assert not parse_condition("[BODY].big < 5").holds(obs)
    assert failure(parse_condition("[BODY].big < 5"), obs).startswith("[BODY].big (999")
