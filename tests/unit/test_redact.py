"""redact() (hooks/http_policy.py) finds every secret shape it knows in every encoding a body
or a log may give it back (issue 18, item 9): as is, JSON-escaped ("\\/" as PHP writes it,
"\\u002f" in either case, escaped again inside JSON), percent-encoded in either case (".NET
writes %2f") and as a form post ("+" for a space). The same matrix goes through Slack, the
results store and the task log in tests/integration/test_hostile_site.py."""

from __future__ import annotations

import base64
import json

import pytest

from hostile_site import ENCODINGS
from maintenance.hooks.http_policy import redact

PASSWORD = "Pw/s3cr3t+Zq7"
ODD = "K3~yZ?p/w+q"            # its base64 (SzN+eVo/cC93K3E=) has "+", "/" and "="
HEADER = "Bearer tok-b1e2a3r4e5r6"
PAIR = f"monitor:{PASSWORD}"
SECRETS = (PASSWORD, ODD, HEADER, PAIR)

KNOWN = {   # shape -> the secret as it was sent
    "password": PASSWORD,
    "secret with ~ and ?": ODD,
    "header value with a space": HEADER,
    "base64": base64.b64encode(ODD.encode()).decode(),
    "base64 unpadded": base64.b64encode(ODD.encode()).decode().rstrip("="),
    "urlsafe base64": base64.urlsafe_b64encode(ODD.encode()).decode().rstrip("="),
    "base64 of user:password": base64.b64encode(PAIR.encode()).decode(),
}
STRUCTURAL = {   # shape -> (text, what must go), found with no secret given
    "URL user-info": ("https://admin:0therPass99@db.example/x", "0therPass99"),
    "key-like query value": ("https://api.example/v1?access_token=UNKNOWNTOKEN123&x=1", "UNKNOWNTOKEN123"),
}
FORMS = {"as is": lambda t: t, **ENCODINGS,
         "php-json in json": lambda t: json.dumps(ENCODINGS["php-json"](t))[1:-1],
         "json-u in json": lambda t: json.dumps(ENCODINGS["json-u"](t))[1:-1]}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("shape", list(KNOWN))
def test_a_known_secret_is_redacted_in_every_form(shape, form):
    encoded = FORMS[form](KNOWN[shape])
    assert redact(f"wrong credentials {encoded} given", SECRETS) == "wrong credentials *** given", encoded


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("shape", list(STRUCTURAL))
def test_a_secret_shape_is_redacted_in_every_form(shape, form):
    text, secret = STRUCTURAL[shape]
    shown = redact(f"upstream {FORMS[form](text)} failed")
    assert secret not in shown and "***" in shown, shown


def test_what_is_no_secret_is_left_alone():
    text = 'GET https://example.com/a/b?page=2&q=x%2Fy failed: {"path": "\\/a\\/b", "mail": "ops@example.com"}'
    assert redact(text, SECRETS) == text
    assert redact("http://monitor:Pw%2Fs3cr3t%2BZq7@host/x") == "http://***@host/x"   # %2F inside user-info
