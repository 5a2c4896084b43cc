"""The OpenADR 3 VEN side (sources.openadr, sources.openadr_push) against the test VTN
(sources.vtn), over real sockets on 127.0.0.1: polling with pagination, OAuth2 and static tokens,
pushed notifications, every payload type the planner uses, interval inheritance, targets, and the
faults — each a clear message naming the input, none ever showing a secret."""

from __future__ import annotations

import copy
import json
import logging

import httpx
import pandas as pd
import pytest

from sources.frames import SourceError
from sources.http import (
    AuthError,
    ClientError,
    RateLimitedError,
    ServerError,
    TransportFailure,
)
from sources.openadr import (
    OPEN_END,
    VtnClient,
    parse_events,
    site_targets,
)
from sources.openadr_push import PushReceiver
from sources.vtn import VtnServer

CLIENT_ID = "gridflex-ven-client-77"
CLIENT_SECRET = "s3cr3t-client-secret-OPENADR-4711"
STATIC_TOKEN = "static-bearer-TOKEN-0123456789"
PUSH_TOKEN = "push-bearer-TOKEN-abcdef987654"
SECRETS = (CLIENT_ID, CLIENT_SECRET, STATIC_TOKEN, PUSH_TOKEN)
OAUTH_ENV = {
    "GRIDFLEX_OPENADR_CLIENT_ID": CLIENT_ID,
    "GRIDFLEX_OPENADR_CLIENT_SECRET": CLIENT_SECRET,
}
TOKEN_ENV = {"GRIDFLEX_OPENADR_TOKEN": STATIC_TOKEN}

AS_OF = pd.Timestamp("2026-03-02T10:00Z")
RECEIVED = pd.Timestamp("2026-03-02T10:03Z")
SITES = ["oakland", "hamburg", "manchester"]
#: hamburg's OpenADR resource is not its name
SOT = site_targets({"oakland": "oakland", "hamburg": "HAM-DC-01", "manchester": "manchester"})


def _no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"a secret leaked into: {text[:300]}"


def limit_event(program_id: str = "p1", **kw) -> dict:
    ev = {
        "programID": program_id,
        "eventName": "import cap",
        "priority": 1,
        "targets": [{"type": "RESOURCE_NAME", "values": ["oakland"]}],
        "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}],
        "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT1H"},
        "intervals": [
            {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [50000]}]},
            {"id": 1, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [40000]}]},
        ],
    }
    ev.update(kw)
    return ev


def stored(ev: dict, id_: str = "ev-1", mod: str = "2026-03-02T09:00:00Z") -> dict:
    """An event as a VTN serves it (with the fields it provisions)."""
    return {
        "id": id_,
        "objectType": "EVENT",
        "createdDateTime": mod,
        "modificationDateTime": mod,
        **copy.deepcopy(ev),
    }


def parse(items, via="poll", **kw):
    return parse_events(
        items,
        received_at=RECEIVED,
        as_of=AS_OF,
        site_of_target=SOT,
        all_sites=SITES,
        via=via,
        ven_name="gridflex",
        **kw,
    )


@pytest.fixture
def vtn():
    server = VtnServer(clients={CLIENT_ID: CLIENT_SECRET}, tokens=[STATIC_TOKEN]).start()
    yield server
    server.close()


@pytest.fixture
def program(vtn):
    return vtn.add_program({"programName": "capacity-dr"})


def client(vtn, env=OAUTH_ENV, **kw) -> VtnClient:
    sleeps: list[float] = []
    c = VtnClient(vtn.url, environ=env, sleep=sleeps.append, **kw)
    c.sleeps = sleeps  # type: ignore[attr-defined]
    return c


# -------------------------------------------------------------------------------------------------
# poll, pagination, auth
# -------------------------------------------------------------------------------------------------
def test_poll_reads_programs_and_every_page_of_events_with_an_oauth_token(vtn, program):
    for k in range(120):
        vtn.publish(limit_event(program["id"], eventName=f"e{k}"))
    with client(vtn) as c:
        programs = c.programs()
        events = c.events()
        only = c.events(program_id="nope")
    assert [p["programName"] for p in programs] == ["capacity-dr"]
    assert len(events) == 120 and len({e["id"] for e in events}) == 120
    assert [e["eventName"] for e in events[:3]] == ["e0", "e1", "e2"]
    assert only == []
    pages = [q for m, path, q in vtn.requests if path == "/events" and not q.get("programID")]
    assert [(q["skip"], q["limit"]) for q in pages] == [("0", "50"), ("50", "50"), ("100", "50")]
    tokens = [r for r in vtn.requests if r[1] == "/auth/token"]
    assert len(tokens) == 1  # one token for the whole session
    for e in events:  # VTN-provisioned fields
        assert {"id", "createdDateTime", "modificationDateTime", "objectType"} <= set(e)


def test_events_filtered_by_target_as_the_spec_names_the_parameters(vtn, program):
    vtn.publish(limit_event(program["id"]))
    vtn.publish(limit_event(program["id"], targets=[{"type": "RESOURCE_NAME", "values": ["x"]}]))
    vtn.publish(limit_event(program["id"], targets=None))  # untargeted: applies to everyone
    with client(vtn, env=TOKEN_ENV) as c:
        got = c.events(target_type="RESOURCE_NAME", target_values=["oakland", "HAM-DC-01"])
    assert len(got) == 2
    assert any(q.get("targetType") == "RESOURCE_NAME" for _, _, q in vtn.requests)


def test_static_bearer_token_needs_no_token_endpoint(vtn, program):
    vtn.publish(limit_event(program["id"]))
    with client(vtn, env=TOKEN_ENV) as c:
        assert len(c.events()) == 1
    assert not [r for r in vtn.requests if r[1] == "/auth/token"]


def test_an_expired_oauth_token_is_refreshed_once(vtn, program):
    vtn.publish(limit_event(program["id"]))
    with client(vtn) as c:
        assert len(c.events()) == 1
        vtn.expire_tokens()
        assert len(c.events()) == 1
    assert len([r for r in vtn.requests if r[1] == "/auth/token"]) == 2


def test_wrong_client_secret_names_the_variables_never_the_secret(vtn):
    env = {**OAUTH_ENV, "GRIDFLEX_OPENADR_CLIENT_SECRET": "wrong-secret-value-123"}
    vtn.set_faults(echo_secrets_on_error=True)  # the VTN echoes the request in its error body
    with pytest.raises(AuthError) as e, client(vtn, env=env) as c:
        c.events()
    msg = str(e.value)
    assert "GRIDFLEX_OPENADR_CLIENT_ID / GRIDFLEX_OPENADR_CLIENT_SECRET" in msg
    assert vtn.url in msg and "401" in msg and "/auth/token" in msg
    assert "wrong-secret-value-123" not in msg
    _no_secret(msg)


def test_missing_credentials_name_the_variables():
    with pytest.raises(AuthError) as e:
        VtnClient("http://127.0.0.1:9", environ={})
    msg = str(e.value)
    assert "GRIDFLEX_OPENADR_CLIENT_ID" in msg and "GRIDFLEX_OPENADR_TOKEN" in msg
    with pytest.raises(AuthError, match="GRIDFLEX_OPENADR_CLIENT_SECRET is not set"):
        VtnClient("http://127.0.0.1:9", environ={"GRIDFLEX_OPENADR_CLIENT_ID": CLIENT_ID})
    with pytest.raises(AuthError, match="MY_TOKEN"):
        VtnClient("http://127.0.0.1:9", environ={}, token_env="MY_TOKEN")


def test_vtn_answering_401_is_an_auth_error_naming_the_variable(vtn, program, caplog):
    vtn.set_faults(unauthorized=True, echo_secrets_on_error=True)
    with pytest.raises(AuthError) as e, client(vtn, env=TOKEN_ENV) as c:
        c.events()
    msg = str(e.value)
    assert "401" in msg and "GRIDFLEX_OPENADR_TOKEN" in msg and vtn.url in msg
    _no_secret(msg + caplog.text)


def test_5xx_is_retried_then_succeeds_and_always_failing_gives_up_naming_the_vtn(
    vtn, program, caplog
):
    vtn.publish(limit_event(program["id"]))
    vtn.set_faults(status_burst=(503, 500))
    with client(vtn, env=TOKEN_ENV, max_attempts=3) as c:
        assert len(c.events()) == 1
        assert c.sleeps == [0.2, 0.4]  # short exponential backoff
    vtn.set_faults(status_burst=(503,) * 10, echo_secrets_on_error=True)
    with pytest.raises(ServerError) as e, client(vtn, env=TOKEN_ENV, max_attempts=3) as c:
        c.events()
    msg = str(e.value)
    assert "gave up after 3 attempt(s)" in msg and "503" in msg and vtn.url in msg
    _no_secret(msg + caplog.text)


def test_429_waits_what_retry_after_says_capped_then_succeeds(vtn, program, caplog):
    vtn.publish(limit_event(program["id"]))
    vtn.set_faults(status_burst=(429, 429), retry_after="2")
    with client(vtn, env=TOKEN_ENV, max_attempts=3) as c:
        assert len(c.events()) == 1
        assert c.sleeps == [2.0, 2.0]  # the VTN's Retry-After, not the short backoff
    assert "429 rate limited; attempt 1/3, retrying" in caplog.text
    # a VTN asking for an hour is waited on for retry_after_cap at most, then given up on
    vtn.set_faults(status_burst=(429,) * 5, retry_after="3600")
    with pytest.raises(RateLimitedError) as e, client(vtn, env=TOKEN_ENV, max_attempts=2) as c:
        c.events()
    assert c.sleeps == [10.0]
    assert "gave up after 2 attempt(s): 429 rate limited" in str(e.value) and vtn.url in str(
        e.value
    )


def test_a_slow_vtn_times_out_is_retried_and_gives_up_naming_the_timeout(vtn, program, caplog):
    vtn.publish(limit_event(program["id"]))
    vtn.set_faults(slow_burst=1, slow_s=1.5)
    with client(vtn, env=TOKEN_ENV, max_attempts=2, timeout_s=0.5) as c:
        assert len(c.events()) == 1  # the second attempt answers at once
    assert "timeout (ReadTimeout); attempt 1/2, retrying" in caplog.text
    vtn.set_faults(slow_burst=5, slow_s=1.5)
    with (
        pytest.raises(TransportFailure) as e,
        client(vtn, env=TOKEN_ENV, max_attempts=2, timeout_s=0.5) as c,
    ):
        c.events()
    msg = str(e.value)
    assert "gave up after 2 attempt(s): timeout (ReadTimeout)" in msg and vtn.url in msg


def test_a_redirect_to_another_host_is_not_followed_with_the_credentials(vtn, program, caplog):
    elsewhere = VtnServer(tokens=[]).start()
    try:
        for env in (TOKEN_ENV, OAUTH_ENV):  # the token endpoint redirected too
            vtn.set_faults(redirect_to=elsewhere.url)
            with pytest.raises(ClientError) as e, client(vtn, env=env) as c:
                c.events()
            msg = str(e.value)
            assert "302 redirect not followed" in msg and "fix vtn_url" in msg, msg
            _no_secret(msg + caplog.text)
        assert elsewhere.requests == []  # nothing, so no credential, reached the other host
    finally:
        elsewhere.close()


def test_vtn_down_is_a_transport_failure_naming_the_url(vtn):
    url = vtn.url
    vtn.stop()  # connections refused from now on
    with pytest.raises(TransportFailure) as e, client(vtn, env=OAUTH_ENV, max_attempts=2) as c:
        c.programs()
    msg = str(e.value)
    assert url in msg and "gave up after 2 attempt(s)" in msg and "ConnectError" in msg
    assert "is the VTN" in msg and "up?" in msg
    _no_secret(msg)


def test_a_body_that_is_not_json_is_a_clear_source_error(vtn, program):
    vtn.set_faults(not_json_burst=1)
    with pytest.raises(SourceError) as e, client(vtn, env=TOKEN_ENV) as c:
        c.events()
    assert "malformed JSON" in str(e.value) and "/events" in str(e.value)
    assert "502 Bad Gateway" in str(e.value)  # what the body started with


def test_vtn_errors_have_the_spec_problem_shape(vtn):
    r = httpx.get(
        f"{vtn.url}/events",
        params={"limit": 500},
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )
    assert r.status_code == 400
    assert set(r.json()) == {"type", "title", "status", "detail"} and r.json()["status"] == 400
    r = httpx.get(f"{vtn.url}/events")
    assert r.status_code == 401 and r.json()["title"] == "Unauthorized"
    r = httpx.get(f"{vtn.url}/events/nope", headers={"Authorization": f"Bearer {STATIC_TOKEN}"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]


# -------------------------------------------------------------------------------------------------
# push
# -------------------------------------------------------------------------------------------------
def test_push_subscription_publish_modify_cancel_reach_the_receiver(vtn, program):
    got = []
    with (
        PushReceiver(
            got.append, bearer_token=PUSH_TOKEN, site_of_target=SOT, all_sites=SITES
        ) as rec,
        client(vtn) as c,
    ):
        sub = c.subscribe(rec.callback_url, PUSH_TOKEN)
        again = c.subscribe(rec.callback_url, PUSH_TOKEN)
        assert again["id"] == sub["id"] and len(vtn.subscriptions) == 1  # idempotent
        assert sub["objectOperations"][0]["objects"] == ["EVENT"]
        ev = vtn.publish(limit_event(program["id"]))
        vtn.modify(ev["id"], {"intervals": ev["intervals"][:1]})
        vtn.cancel(ev["id"])
        vtn.wait_notifications(3)
        rec.wait_handled(3)
    notes = vtn.notifications
    assert [n["operation"] for n in notes] == ["POST", "PUT", "DELETE"]
    assert all(n["status"] == 200 and n["latency_s"] is not None for n in notes)
    assert [g.versions.operation[0] for g in got] == ["POST", "PUT", "DELETE"]
    assert all(g.via == "push" for g in got)
    created, modified, deleted = got
    assert created.intervals.interval_id.tolist() == [0, 1]
    assert created.intervals.value.tolist() == [50.0, 40.0]  # 50,000 kW = 50 MW
    assert modified.intervals.interval_id.tolist() == [0]
    assert modified.versions.modified_at[0] > created.versions.modified_at[0]
    assert deleted.versions.event_id[0] == ev["id"] and deleted.intervals.empty
    raw = json.loads(created.raw.payload[0])  # the notification as received
    assert raw["operation"] == "POST" and raw["object"]["id"] == ev["id"]


def test_subscription_with_a_new_token_is_updated_not_duplicated(vtn):
    with client(vtn) as c:
        first = c.subscribe("http://127.0.0.1:1/openadr/notifications", PUSH_TOKEN)
        second = c.subscribe("http://127.0.0.1:1/openadr/notifications", "a-rotated-token-0001")
    assert second["id"] == first["id"] and len(vtn.subscriptions) == 1
    assert vtn.subscriptions[0]["objectOperations"][0]["bearerToken"] == "a-rotated-token-0001"


def test_receiver_refuses_a_bad_token_and_a_malformed_body_with_clear_messages():
    got = []
    with PushReceiver(
        got.append, bearer_token=PUSH_TOKEN, site_of_target=SOT, all_sites=SITES
    ) as rec:
        url = rec.callback_url
        ok = {"Authorization": f"Bearer {PUSH_TOKEN}"}
        r = httpx.post(url, json={"objectType": "EVENT"}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and PUSH_TOKEN not in r.text
        r = httpx.post(url, content=b"{not json", headers=ok)
        assert r.status_code == 400 and "not JSON" in r.json()["detail"]
        r = httpx.post(url, json=[1, 2], headers=ok)
        assert r.status_code == 400 and "JSON object" in r.json()["detail"]
        r = httpx.post(url, json={"objectType": "EVENT", "operation": "POST"}, headers=ok)
        assert r.status_code == 400 and "missing object" in r.json()["detail"]
        body = {"objectType": "EVENT", "operation": "PATCH", "object": {}}
        r = httpx.post(url, json=body, headers=ok)
        assert r.status_code == 400 and "'PATCH'" in r.json()["detail"]
        # another object type: accepted, ignored
        body = {"objectType": "PROGRAM", "operation": "POST", "object": {"id": "p"}}
        assert httpx.post(url, json=body, headers=ok).status_code == 200
        # a well-formed notification of a malformed event: accepted, kept, reported
        bad = stored(limit_event(), "ev-bad")
        bad["intervalPeriod"] = {"start": "yesterday", "duration": "PT1H"}
        body = {"objectType": "EVENT", "operation": "POST", "object": bad}
        assert httpx.post(url, json=body, headers=ok).status_code == 200
        rec.wait_handled(1)
    assert [r.status for r in rec.received] == [401, 400, 400, 400, 400, 200, 200]
    (parsed,) = got
    assert len(parsed.raw) == 1 and parsed.intervals.empty
    (msg,) = parsed.problems.problem
    assert "'ev-bad'" in msg and "intervalPeriod.start 'yesterday'" in msg


# -------------------------------------------------------------------------------------------------
# parsing: payload types and units, intervals, targets
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ptype, desc, values, expect",
    [
        ("IMPORT_CAPACITY_LIMIT", {"units": "KW"}, [12500], (12.5, "MW", None)),
        ("IMPORT_CAPACITY_LIMIT", {"units": "MW"}, [30], (30.0, "MW", None)),
        ("EXPORT_CAPACITY_LIMIT", {"units": "kW"}, [2000], (2.0, "MW", None)),
        ("DISPATCH_SETPOINT", {"units": "MW"}, [8.5], (8.5, "MW", None)),
        ("PRICE", {"units": "KWH", "currency": "USD"}, [0.17], (170.0, "USD/MWh", "USD")),
        ("PRICE", {"units": "MWH", "currency": "EUR"}, [-12.0], (-12.0, "EUR/MWh", "EUR")),
        ("EXPORT_PRICE", {"units": "KWH", "currency": "USD"}, [0.05], (50.0, "USD/MWh", "USD")),
        ("GHG", {}, [412.0], (412.0, "gCO2/kWh", None)),
        ("SIMPLE", {}, [3], (3.0, "level", None)),
        ("ALERT_GRID_EMERGENCY", {}, ["conserve now"], (1.0, "alert", None)),
        ("ALERT_FLEX_ALERT", {}, ["flex alert 4-9 pm"], (1.0, "alert", None)),
    ],
)
def test_every_payload_type_the_planner_uses_is_parsed_with_its_unit(ptype, desc, values, expect):
    ev = stored(
        limit_event(
            payloadDescriptors=[{"payloadType": ptype, **desc}],
            intervals=[{"id": 7, "payloads": [{"type": ptype, "values": values}]}],
        )
    )
    p = parse([ev])
    assert p.problems.empty, p.problems.problem.tolist()
    (row,) = p.intervals.to_dict("records")
    assert (row["value"], row["unit"], row["currency"]) == expect
    assert row["payload_type"] == ptype and row["interval_id"] == 7 and row["site"] == "oakland"
    assert row["source_unit"] == desc.get("units")
    assert json.loads(row["source_value"]) == values[0]
    assert row["text"] == (values[0] if ptype.startswith("ALERT") else None)
    assert row["start"] == pd.Timestamp("2026-03-02T12:00Z") and row["end"] == pd.Timestamp(
        "2026-03-02T13:00Z"
    )


def test_interval_periods_inherit_from_the_event_and_follow_each_other():
    ev = stored(
        limit_event(
            intervalPeriod={"start": "2026-03-02T14:00:00+02:00", "duration": "PT1H"},
            intervals=[
                {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [1000]}]},
                {
                    "id": 1,
                    "intervalPeriod": {"duration": "PT2H"},
                    "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [2000]}],
                },
                {"id": 2, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [3000]}]},
                {
                    "id": 3,
                    "intervalPeriod": {"start": "2026-03-03T00:00:00Z", "duration": "PT30M"},
                    "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [4000]}],
                },
            ],
        )
    )
    got = parse([ev]).intervals
    spans = [(r.start.isoformat(), r.end.isoformat(), r.value) for r in got.itertuples()]
    assert spans == [
        ("2026-03-02T12:00:00+00:00", "2026-03-02T13:00:00+00:00", 1.0),  # +02:00 -> UTC
        ("2026-03-02T13:00:00+00:00", "2026-03-02T15:00:00+00:00", 2.0),  # own duration
        ("2026-03-02T15:00:00+00:00", "2026-03-02T16:00:00+00:00", 3.0),  # follows the previous
        ("2026-03-03T00:00:00+00:00", "2026-03-03T00:30:00+00:00", 4.0),  # own start and duration
    ]


def test_multi_valued_payloads_split_the_interval_and_infinity_is_open_ended():
    ev = stored(
        limit_event(
            targets=None,
            payloadDescriptors=[{"payloadType": "PRICE", "units": "KWH", "currency": "USD"}],
            intervals=[
                {
                    "id": 0,
                    "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT3H"},
                    "payloads": [{"type": "PRICE", "values": [0.17, 0.03, 0.11]}],
                }
            ],
        )
    )
    got = parse([ev]).intervals
    oak = got[got.site == "oakland"]
    assert oak.sub_interval.tolist() == [0, 1, 2]
    assert oak.value.tolist() == pytest.approx([170.0, 30.0, 110.0])
    assert oak.start.dt.hour.tolist() == [12, 13, 14] and oak.end.dt.hour.tolist() == [13, 14, 15]
    alert = stored(
        limit_event(
            targets=None,
            intervalPeriod={"start": "0001-01-01T00:00:00Z", "duration": "P9999Y"},
            intervals=[
                {"id": 0, "payloads": [{"type": "ALERT_GRID_EMERGENCY", "values": ["now"]}]}
            ],
        ),
        "ev-alert",
    )
    got = parse([alert])
    assert got.problems.empty, got.problems.problem.tolist()
    assert set(got.intervals.end) == {OPEN_END} and set(got.intervals.site) == set(SITES)
    assert set(got.intervals.start) == {pd.Timestamp("1970-01-01", tz="UTC")}


def test_targets_resolve_to_fleet_sites():
    def sites_of(targets):
        return parse([stored(limit_event(targets=targets))]).intervals.site.unique().tolist()

    assert sites_of(None) == SITES  # untargeted: every site
    assert sites_of([]) == SITES
    assert sites_of([{"type": "RESOURCE_NAME", "values": ["HAM-DC-01", "someone-else"]}]) == [
        "hamburg"
    ]
    assert sites_of([{"type": "VEN_NAME", "values": ["gridflex"]}]) == SITES
    assert sites_of(["manchester", "oakland"]) == ["oakland", "manchester"]  # 3.1: strings
    targets = parse(
        [stored(limit_event(targets=[{"type": "RESOURCE_NAME", "values": ["HAM-DC-01"]}]))]
    )
    assert targets.intervals.target.unique().tolist() == ["RESOURCE_NAME:HAM-DC-01"]


def test_programs_payload_descriptors_apply_to_events_without_their_own():
    ev = stored(limit_event(payloadDescriptors=None))
    assert not parse([ev]).problems.empty  # a limit without units is refused
    prog = {
        "id": "p1",
        "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "MW"}],
    }
    got = parse([ev], programs=[prog])
    assert got.problems.empty and got.intervals.value.tolist() == [50000.0, 40000.0]


# -------------------------------------------------------------------------------------------------
# problems: each names the event and the field, keeps the raw payload
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, says",
    [
        (lambda e: e.pop("intervalPeriod"), "no start"),
        (lambda e: e["intervalPeriod"].pop("duration"), "no intervalPeriod.duration"),
        (
            lambda e: e["intervalPeriod"].update(start="2026-13-45T99:00"),
            "intervalPeriod.start '2026-13-45T99:00' is not an ISO 8601 time",
        ),
        (
            lambda e: e["intervalPeriod"].update(duration="1 hour"),
            "intervalPeriod.duration '1 hour' is not an ISO 8601 duration",
        ),
        (
            lambda e: e["intervals"][1]["payloads"][0].update(values=["lots"]),
            "intervals[1] (id 1) payload IMPORT_CAPACITY_LIMIT: 'lots' is not a number",
        ),
        (
            lambda e: e["intervals"][0]["payloads"][0].update(values=[]),
            "intervals[0] (id 0) payload IMPORT_CAPACITY_LIMIT: empty 'values'",
        ),
        (
            lambda e: e.update(payloadDescriptors=[]),
            "units None in its payloadDescriptor is not one of W, KW, MW, GW",
        ),
        (lambda e: e.pop("modificationDateTime"), "no modificationDateTime"),
        (lambda e: e.update(targets="oakland"), 'targets "oakland" is not a list'),
    ],
)
def test_malformed_events_are_kept_raw_and_reported_naming_event_and_field(change, says):
    ev = stored(limit_event(), "ev-mal")
    change(ev)
    p = parse([ev])
    assert p.intervals.empty and len(p.raw) == 1 and not p.versions.usable[0]
    assert json.loads(p.raw.payload[0]) == ev  # as received
    (row,) = p.problems.to_dict("records")
    assert row["kind"] == "malformed" and row["event_id"] == "ev-mal"
    assert "OpenADR event 'ev-mal'" in row["problem"] and says in row["problem"], row["problem"]


def test_an_unknown_payload_type_is_reported_not_fatal():
    ev = stored(limit_event())
    ev["intervals"][0]["payloads"].append({"type": "CURVE", "values": [{"x": 1, "y": 2}]})
    p = parse([ev])
    assert len(p.intervals) == 2  # the known payloads are still read
    (row,) = p.problems.to_dict("records")
    assert row["kind"] == "unknown_payload_type" and "'CURVE'" in row["problem"]
    assert "ev-1" in row["problem"]


def test_targets_naming_no_fleet_site_are_reported():
    ev = stored(limit_event(targets=[{"type": "RESOURCE_NAME", "values": ["BERLIN-9"]}]))
    p = parse([ev])
    assert p.intervals.empty and p.versions.usable[0]
    (row,) = p.problems.to_dict("records")
    assert row["kind"] == "unknown_target"
    assert (
        "BERLIN-9" in row["problem"]
        and "name no fleet site" in row["problem"]
        and "HAM-DC-01" in row["problem"]
    )


def test_an_event_already_over_is_kept_and_reported():
    ev = stored(limit_event(intervalPeriod={"start": "2026-03-01T00:00:00Z", "duration": "PT1H"}))
    p = parse([ev])
    assert len(p.intervals) == 2  # kept
    (row,) = p.problems.to_dict("records")
    assert row["kind"] == "already_over" and "2026-03-01T02:00:00+00:00" in row["problem"]
    assert p.active().empty


def test_text_that_is_not_json_is_kept_and_reported():
    p = parse(["{oops"], via="push")
    assert p.raw.payload[0] == "{oops" and p.raw.event_id[0] == ""
    assert "not JSON" in p.problems.problem[0]


def test_no_secret_in_any_message_log_or_parsed_row(vtn, program, caplog):
    caplog.set_level(logging.DEBUG)
    vtn.set_faults(echo_secrets_on_error=True)
    vtn.publish(limit_event(program["id"]))
    messages = []
    for env in (OAUTH_ENV, TOKEN_ENV):
        for faults in ({"unauthorized": True}, {"status_burst": (500,) * 5}, {"not_json_burst": 1}):
            vtn.set_faults(echo_secrets_on_error=True, **faults)
            try:
                with client(vtn, env=env) as c:
                    c.events()
            except Exception as exc:  # noqa: BLE001
                messages.append(f"{exc!r} {exc}")
    assert len(messages) == 6
    vtn.set_faults()
    with client(vtn) as c:
        messages.append(repr(c))
        events = c.events()
    p = parse(events)
    messages.append(p.raw.to_csv() + p.intervals.to_csv() + p.problems.to_csv())
    _no_secret("\n".join(messages) + caplog.text)
