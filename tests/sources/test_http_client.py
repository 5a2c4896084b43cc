"""The shared HTTP layer: retries, Retry-After, errors, secret hygiene (httpx.MockTransport)."""

from __future__ import annotations

import email.utils
import logging

import httpx
import pytest

from sources.frames import SourceError
from sources.http import (
    AuthError,
    ClientError,
    HttpClient,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportFailure,
    chunk_range,
    parse_retry_after,
)

TOKEN = "em-secret-token-9f8e7d6c5b4a"


def make(responses, **kw):
    """A client whose transport answers ``responses`` in order (callables get the request)."""
    seen: list[httpx.Request] = []
    waits: list[float] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        r = queue.pop(0) if len(queue) > 1 else queue[0]
        return r(request) if callable(r) else r

    kw.setdefault("max_attempts", 4)
    client = HttpClient(
        "testapi",
        "https://api.example.test",
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        **kw,
    )
    return client, seen, waits


def test_ok_json_and_params_without_none():
    client, seen, waits = make([httpx.Response(200, json={"a": 1})])
    assert client.get_json("/v3/x", {"zone": "DE", "skip": None}) == {"a": 1}
    assert seen[0].url.path == "/v3/x"
    assert dict(seen[0].url.params) == {"zone": "DE"}
    assert waits == []


def test_429_retry_after_seconds_then_success():
    client, seen, waits = make(
        [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": True})]
    )
    assert client.get_json("/x") == {"ok": True}
    assert waits == [7.0]
    assert len(seen) == 2


def test_429_retry_after_is_capped():
    client, _, waits = make(
        [httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json={})],
        retry_after_cap=60,
    )
    client.get_json("/x")
    assert waits == [60]


def test_429_retry_after_http_date():
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(42)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now) == 0
    # through the client: a date ~30 s ahead of the real clock
    import time

    client, _, waits = make(
        [
            httpx.Response(
                429, headers={"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)}
            ),
            httpx.Response(200, json={}),
        ]
    )
    client.get_json("/x")
    assert 25 <= waits[0] <= 31


def test_429_exhausted_is_rate_limited_error():
    client, seen, waits = make([httpx.Response(429)], max_attempts=3, backoff_initial=1)
    with pytest.raises(RateLimitedError, match="gave up after 3 attempt"):
        client.get_json("/x")
    assert len(seen) == 3
    assert waits == [1, 2]  # no Retry-After: exponential backoff


def test_5xx_retried_with_backoff_then_success():
    client, seen, waits = make(
        [httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[1])],
        backoff_initial=0.5,
    )
    assert client.get_json("/x") == [1]
    assert waits == [0.5, 1.0]
    assert len(seen) == 3


def test_5xx_exhausted_is_clear_error(caplog):
    client, seen, waits = make(
        [httpx.Response(500, text="upstream exploded")],
        max_attempts=3,
        backoff_initial=2,
        backoff_max=3,
    )
    with caplog.at_level(logging.WARNING, logger="gridflex.sources.http"):
        with pytest.raises(ServerError) as info:
            client.get_json("/v3/x", {"zone": "DE"})
    msg = str(info.value)
    assert "gave up after 3 attempt(s)" in msg and "500" in msg and "/v3/x?zone=DE" in msg
    assert "upstream exploded" in msg
    assert info.value.transient and info.value.status == 500
    assert waits == [2, 3]  # capped at backoff_max
    assert len(caplog.records) == 2  # one warning per retry


def test_max_attempts_one_means_no_retry():
    client, seen, waits = make([httpx.Response(503)], max_attempts=1)
    with pytest.raises(ServerError):
        client.get_json("/x")
    assert len(seen) == 1 and waits == []


def test_timeouts_and_connection_errors_are_retried():
    def timeout(request):
        raise httpx.ReadTimeout("read timed out", request=request)

    def refused(request):
        raise httpx.ConnectError("connection refused", request=request)

    client, seen, waits = make([timeout, refused, httpx.Response(200, json={"x": 1})])
    assert client.get_json("/x") == {"x": 1}
    assert len(waits) == 2

    client, _, _ = make([timeout], max_attempts=2)
    with pytest.raises(TransportFailure, match="timeout"):
        client.get_json("/x")


def test_401_names_the_env_var():
    client, seen, waits = make(
        [httpx.Response(401, json={"message": "bad token"})],
        auth_hint="check ELECTRICITYMAPS_API_TOKEN",
    )
    with pytest.raises(AuthError, match="ELECTRICITYMAPS_API_TOKEN") as info:
        client.get_json("/x")
    assert info.value.status == 401 and not info.value.transient
    assert len(seen) == 1 and waits == []  # never retried


def test_404_and_other_4xx():
    client, _, _ = make([httpx.Response(404, json={"message": "Zone 'XX' does not exist."})])
    with pytest.raises(NotFoundError) as info:
        client.get_json("/v3/carbon-intensity/latest", {"zone": "XX"})
    assert "/v3/carbon-intensity/latest?zone=XX" in str(info.value)
    assert "does not exist" in str(info.value)

    client, seen, _ = make([httpx.Response(400, json={"error": True, "reason": "bad hourly"})])
    with pytest.raises(ClientError, match="bad hourly"):
        client.get_json("/x")
    assert len(seen) == 1


def test_malformed_json_is_source_error():
    client, _, _ = make([httpx.Response(200, text='{"zone": "DE", "history": [')])
    with pytest.raises(SourceError, match="malformed JSON") as info:
        client.get_json("/v3/carbon-intensity/history", {"zone": "DE"})
    assert "testapi GET /v3/carbon-intensity/history?zone=DE" in str(info.value)


def test_token_never_in_logs_exceptions_or_repr(caplog):
    """The failing request echoes the token in its body; it must not leak anywhere."""
    echo = httpx.Response(500, text=f"internal error for token {TOKEN}")
    unauthorized = httpx.Response(401, text=f"token {TOKEN} is not valid")
    client, seen, _ = make(
        [echo, echo, unauthorized], secrets=[TOKEN], auth_hint="check ELECTRICITYMAPS_API_TOKEN"
    )
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthError) as info:
            client.get_json("/x", {"zone": "DE"}, headers={"auth-token": TOKEN})
    assert seen[0].headers["auth-token"] == TOKEN  # it was sent, in a header
    assert TOKEN not in str(seen[0].url)
    text = str(info.value) + repr(info.value) + caplog.text + repr(client)
    text += "".join(str(r.args) + r.getMessage() for r in caplog.records)
    assert TOKEN not in text
    assert "***" in str(info.value)
    assert "ELECTRICITYMAPS_API_TOKEN" in str(info.value)


def test_chunk_range_is_adjacent():
    import pandas as pd

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    chunks = chunk_range(t0, t0 + pd.Timedelta(days=25), pd.Timedelta(days=10))
    assert [(a.day, b.day) for a, b in chunks] == [(1, 11), (11, 21), (21, 26)]
    with pytest.raises(ValueError):
        chunk_range(t0, t0, pd.Timedelta(days=1))


def test_redirect_not_followed_so_headers_stay_home():
    client, seen, _ = make(
        [httpx.Response(301, headers={"Location": "https://elsewhere.test/v3/x"})],
    )
    with pytest.raises(ClientError, match="redirect to https://elsewhere.test/v3/x not followed"):
        client.get_json("/v3/x", headers={"auth-token": TOKEN})
    assert len(seen) == 1  # nothing was sent to elsewhere.test
