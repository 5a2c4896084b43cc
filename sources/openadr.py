"""OpenADR 3, the VEN side: read programs and events from a grid operator's VTN, subscribe for
pushed notifications, and turn events into tidy per-site intervals the planner can use.

Built on ``openadr3`` (python-oa3: pydantic models of every entity, ``Event.resolved_intervals()``
for the spec's interval-period inheritance, ``coerce_notification`` for pushed notifications).
Facts relied on are in ``shared/design/sources.md`` ("OpenADR 3").

**Client** (:class:`VtnClient`): ``GET /programs`` and ``GET /events`` page through ``skip`` /
``limit`` (50, the spec's maximum) until a short page. Authentication is OAuth2 client credentials
(``POST {base}/auth/token``, form ``grant_type=client_credentials&client_id&client_secret``; the
token is refreshed once on a 401) or a static bearer token. Secrets come only from environment
variables whose *names* are configured (``GRIDFLEX_OPENADR_CLIENT_ID`` /
``GRIDFLEX_OPENADR_CLIENT_SECRET``, or ``GRIDFLEX_OPENADR_TOKEN``); messages name the variable and
never show a secret (every text put into an exception passes :meth:`VtnClient.redact`; a 401 never
quotes the server's body). 5xx, 429, timeouts and refused connections are retried
(``max_attempts``, short exponential backoff) and then raise :class:`~sources.http.ServerError` /
:class:`~sources.http.TransportFailure` naming the VTN URL; 401/403 raise
:class:`~sources.http.AuthError`; a body that is not JSON a :class:`~sources.frames.SourceError`.

**Parsing** (:func:`parse_events`) never raises on bad data: every item is kept as received
(``raw``), usable ones become intervals, and whatever could not be used is a ``problem`` naming the
event and the field. An event version with any malformed interval is refused whole (no half-read
event is planned on); an unknown payload type only skips that payload.

Unit normalisation (``value``/``unit`` of an interval row; the payload's own value and the
descriptor's units stay in ``source_value``/``source_unit``):

=========================================  ====================  ==================================
payload type                               descriptor ``units``  ``value`` stored as
=========================================  ====================  ==================================
IMPORT_/EXPORT_CAPACITY_LIMIT,             W, KW, MW, GW         MW (KW / 1000); units required
DISPATCH_SETPOINT
PRICE, EXPORT_PRICE                        WH, KWH, MWH, GWH     <currency>/MWh (per KWH x 1000);
                                                                 units and currency required
GHG                                        absent, GHG, KWH      g CO2/kWh (the spec's unit)
SIMPLE                                     -                     level 0..3 (integer)
ALERT_GRID_EMERGENCY, ALERT_FLEX_ALERT     -                     1.0 (in force); message in ``text``
=========================================  ====================  ==================================

Times: interval periods are resolved per the spec (an interval without its own start follows the
previous one; the event's ``intervalPeriod`` gives defaults). A multi-valued payload splits its
interval evenly into ``sub_interval`` s (User Guide 7.3). ``P9999Y`` ("infinity") ends at
:data:`OPEN_END`; a start before 1970 (``0001-01-01``, "do it now") is stored as 1970-01-01.
``randomizeStart`` and ``event.duration`` are not applied (the planner uses the nominal intervals).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openadr3
import pandas as pd
from pydantic import SecretStr, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from sources.frames import SourceError
from sources.http import (
    AuthError,
    ClientError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportFailure,
    add_secret,
    parse_retry_after,
    redact,
)

log = logging.getLogger("gridflex.sources.openadr")

SOURCE = "openadr3"
CLIENT_ID_ENV = "GRIDFLEX_OPENADR_CLIENT_ID"
CLIENT_SECRET_ENV = "GRIDFLEX_OPENADR_CLIENT_SECRET"
TOKEN_ENV = "GRIDFLEX_OPENADR_TOKEN"
#: the bearer token gridflex gives the VTN for pushed notifications (and checks on receipt)
PUSH_TOKEN_ENV = "GRIDFLEX_OPENADR_PUSH_TOKEN"
#: the spec's maximum ``limit`` per page
PAGE_LIMIT = 50
#: where an open-ended (``P9999Y``) interval ends: far beyond any horizon, inside pandas' range
OPEN_END = pd.Timestamp("2200-01-01", tz="UTC")
#: earliest start stored ("the beginning of time", ``0001-01-01``, means "already in force")
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
#: subscription operations (3.0.1/3.1 ``subscription.objectOperations.operations`` enum)
SUBSCRIBE_OPERATIONS = ["CREATE", "UPDATE", "DELETE"]
#: notification operations: 3.0.1 says GET/POST/PUT/DELETE, 3.1 says READ/CREATE/UPDATE/DELETE
OPERATION_ALIASES = {"CREATE": "POST", "UPDATE": "PUT", "READ": "GET"}
OPERATIONS = ("GET", "POST", "PUT", "DELETE")

POWER_TYPES = ("IMPORT_CAPACITY_LIMIT", "EXPORT_CAPACITY_LIMIT", "DISPATCH_SETPOINT")
PRICE_TYPES = ("PRICE", "EXPORT_PRICE")
ALERT_TYPES = ("ALERT_GRID_EMERGENCY", "ALERT_FLEX_ALERT")
#: payload types gridflex plans on; any other type is kept in raw and reported, not fatal
PAYLOAD_TYPES = (*POWER_TYPES, *PRICE_TYPES, "GHG", "SIMPLE", *ALERT_TYPES)
#: descriptor units -> factor to MW
POWER_UNITS = {"W": 1e-6, "KW": 1e-3, "MW": 1.0, "GW": 1e3}
#: descriptor units (energy a price is per) -> factor to per-MWh
ENERGY_UNITS = {"WH": 1e6, "KWH": 1e3, "MWH": 1.0, "GWH": 1e-3}
GHG_UNITS = (None, "GHG", "KWH", "G/KWH", "GCO2/KWH")

RAW_COLUMNS = [
    "event_id",
    "program_id",
    "modification_dt",
    "operation",
    "via",
    "payload_sha256",
    "received_at",
    "as_of",
    "payload",
]
INTERVAL_COLUMNS = [
    "event_id",
    "program_id",
    "event_name",
    "priority",
    "site",
    "target",
    "payload_type",
    "interval_id",
    "sub_interval",
    "start",
    "end",
    "value",
    "unit",
    "currency",
    "source_value",
    "source_unit",
    "text",
    "modified_at",
    "received_at",
    "as_of",
    "cancelled",
]
PROBLEM_COLUMNS = ["event_id", "kind", "problem", "received_at", "as_of"]
VERSION_COLUMNS = [
    "event_id",
    "program_id",
    "event_name",
    "modified_at",
    "operation",
    "usable",
    "n_rows",
    "ends_at",
]


# -------------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------------
@dataclass
class ParsedEvents:
    """What :func:`parse_events` made of a batch (a poll answer, or pushed notifications).

    - ``raw``: one row per item as received (:data:`RAW_COLUMNS`); ``payload`` is its JSON text.
    - ``intervals``: tidy rows (:data:`INTERVAL_COLUMNS`) of every usable event version.
    - ``problems``: ``(event_id, kind, problem, received_at, as_of)``; ``kind`` is ``malformed``,
      ``unknown_payload_type``, ``unknown_target``, ``already_over`` (the store adds
      ``unknown_cancellation`` and ``stale``).
    - ``versions``: one row per item (:data:`VERSION_COLUMNS`), in the order received: which
      event, which modification, which operation, whether it can be applied.
    """

    raw: pd.DataFrame
    intervals: pd.DataFrame
    problems: pd.DataFrame
    versions: pd.DataFrame
    received_at: pd.Timestamp
    as_of: pd.Timestamp
    via: str

    @property
    def events_seen(self) -> int:
        return int(self.versions["event_id"].nunique()) if len(self.versions) else 0

    def active(self, at: pd.Timestamp | None = None) -> pd.DataFrame:
        """Intervals not over at ``at`` (default ``as_of``)."""
        at = self.as_of if at is None else at
        return self.intervals[self.intervals["end"] > at].reset_index(drop=True)


class _Bad(ValueError):
    """Internal: this event cannot be used; the message says which field and why."""


def parse_events(
    raw_events: Sequence[Mapping[str, Any] | str],
    *,
    received_at: pd.Timestamp,
    as_of: pd.Timestamp,
    site_of_target: Mapping[str, str],
    all_sites: Sequence[str],
    via: str,
    ven_name: str | None = None,
    programs: Iterable[Mapping[str, Any]] = (),
) -> ParsedEvents:
    """Events (or notifications ``{"objectType": "EVENT", "operation", "object"}``) into raw
    records, tidy intervals and problems. Never raises on bad data.

    Args:
        raw_events: event objects as the VTN sent them (dicts, or JSON text kept as it came);
            a notification is recognised by its ``objectType``/``operation``/``object`` keys.
        received_at: when gridflex received them; ``as_of``: the hour (poll) or time (push)
            they are known as of. An event whose every interval ended by ``as_of`` is kept and
            reported (``already_over``).
        site_of_target: target value -> fleet site (a site's OpenADR resource name; for other
            target types ``"<TYPE>:<value>"`` or the bare value). 3.0.1 targets
            (``[{"type": "RESOURCE_NAME", "values": [...]}]``) and 3.1 targets (a list of strings)
            are both read. An event without targets applies to every site in ``all_sites``;
            a ``VEN_NAME`` target (or 3.1 target) equal to ``ven_name`` too.
        via: ``"poll"`` or ``"push"``.
        programs: the VTN's programs: their ``payloadDescriptors`` apply to events that have none.
    """
    if via not in ("poll", "push"):
        raise ValueError(f"via must be 'poll' or 'push', got {via!r}")
    received_at = _utc(received_at)
    as_of = _utc(as_of)
    descriptors_of_program = {
        str(p.get("id")): p.get("payloadDescriptors") or []
        for p in programs
        if isinstance(p, Mapping)
    }
    ctx = _Ctx(received_at, as_of, dict(site_of_target), list(all_sites), via, ven_name)
    raw_rows, rows, problems, versions = [], [], [], []
    for item in raw_events:
        r, v, iv, pr = _parse_item(item, ctx, descriptors_of_program)
        raw_rows.append(r)
        versions.append(v)
        rows.extend(iv)
        problems.extend(pr)
    return ParsedEvents(
        raw=_frame(raw_rows, RAW_COLUMNS, times=("modification_dt", "received_at", "as_of")),
        intervals=_interval_frame(rows),
        problems=_problem_frame(problems),
        versions=_frame(versions, VERSION_COLUMNS, times=("modified_at", "ends_at")),
        received_at=received_at,
        as_of=as_of,
        via=via,
    )


@dataclass(frozen=True)
class _Ctx:
    received_at: pd.Timestamp
    as_of: pd.Timestamp
    site_of_target: dict[str, str]
    all_sites: list[str]
    via: str
    ven_name: str | None


def _parse_item(item, ctx: _Ctx, descriptors_of_program) -> tuple[dict, dict, list, list]:
    problems: list[dict] = []

    def problem(eid: str, kind: str, text: str) -> None:
        problems.append({"event_id": eid, "kind": kind, "problem": text})

    text = item if isinstance(item, str) else None
    obj: Any = item
    detail = ""
    if text is not None:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            obj = None
            detail = f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    else:
        text = _dumps(item)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    operation = "GET" if ctx.via == "poll" else "POST"
    event: Any = obj
    if isinstance(obj, Mapping) and openadr3.is_notification(dict(obj)):
        op = obj.get("operation")
        operation = OPERATION_ALIASES.get(str(op).upper(), str(op).upper())
        event = obj.get("object")
    event_id = ""
    if isinstance(event, Mapping) and isinstance(event.get("id"), str):
        event_id = event["id"]
    program_id = event.get("programID") if isinstance(event, Mapping) else None
    program_id = program_id if isinstance(program_id, str) else None
    modified = (
        _time_or_none(event.get("modificationDateTime")) if isinstance(event, Mapping) else None
    )
    raw = {
        "event_id": event_id,
        "program_id": program_id,
        "modification_dt": modified if modified is not None else EPOCH,
        "operation": operation,
        "via": ctx.via,
        "payload_sha256": sha,
        "received_at": ctx.received_at,
        "as_of": ctx.as_of,
        "payload": text,
    }
    version = {
        "event_id": event_id,
        "program_id": program_id,
        "event_name": None,
        "modified_at": modified,
        "operation": operation,
        "usable": False,
        "n_rows": 0,
        "ends_at": None,
    }
    who = _who(event_id, program_id, modified, sha)
    try:
        if obj is None:
            raise _Bad(detail)
        if not isinstance(event, Mapping):
            raise _Bad(f"expected an event object, got {type(event).__name__}")
        if operation not in OPERATIONS:
            raise _Bad(
                f"notification operation {obj.get('operation')!r} is not one of "
                "POST/PUT/DELETE (or CREATE/UPDATE/DELETE)"
            )
        kind = event.get("objectType", "EVENT")
        if kind != "EVENT":
            raise _Bad(f"objectType {kind!r} is not EVENT")
        if not event_id:
            raise _Bad("no 'id' (the VTN assigns one to every event)")
        name = event.get("eventName")
        version["event_name"] = name if isinstance(name, str) else None
        if operation == "DELETE":  # only the id matters: a deletion cancels whatever is stored
            version["usable"] = True
            if modified is None:
                version["modified_at"] = ctx.received_at
            return raw, version, [], _stamp(problems, ctx)
        if modified is None:
            got = event.get("modificationDateTime")
            raise _Bad(
                "no modificationDateTime (the VTN provisions it on every change; without it "
                "versions cannot be ordered)"
                if got is None
                else f"modificationDateTime {got!r} is not an ISO 8601 time"
            )
        rows, ends_at = _event_rows(
            event, ctx, descriptors_of_program.get(program_id or "", []), problem, who
        )
    except _Bad as exc:
        problem(event_id, "malformed", f"{who}: {exc}; kept in raw.openadr_events, not planned on")
        return raw, version, [], _stamp(problems, ctx)
    version.update(usable=True, n_rows=len(rows), ends_at=ends_at)
    if ends_at is not None and ends_at <= ctx.as_of:
        problem(
            event_id,
            "already_over",
            f"{who}: already over: its last interval ended {ends_at.isoformat()}, before the "
            "time it was received for; kept, not planned on",
        )
    return raw, version, rows, _stamp(problems, ctx)


def _who(event_id: str, program_id: str | None, modified: pd.Timestamp | None, sha: str) -> str:
    eid = repr(event_id) if event_id else f"<no id, sha256 {sha[:12]}>"
    parts = [f"OpenADR event {eid}"]
    if program_id:
        parts.append(f"program {program_id!r}")
    if modified is not None:
        parts.append(f"modified {modified.isoformat()}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def _stamp(problems: list[dict], ctx: _Ctx) -> list[dict]:
    return [{**p, "received_at": ctx.received_at, "as_of": ctx.as_of} for p in problems]


def _event_rows(event, ctx: _Ctx, program_descriptors, problem, who) -> tuple[list[dict], Any]:
    """Interval rows of one event version (raises :class:`_Bad` when malformed)."""
    eid = event["id"]
    program_id = event.get("programID")
    if not isinstance(program_id, str) or not program_id:
        raise _Bad("no 'programID'")
    priority = event.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise _Bad(f"priority {priority!r} is not an integer")
    sites, unmatched = _sites_of(event.get("targets"), ctx)
    intervals_raw = event.get("intervals")
    if not isinstance(intervals_raw, list) or not intervals_raw:
        raise _Bad("no 'intervals' list")
    clean, open_ended = _sanitised(event)
    try:
        coerced = openadr3.coerce(clean)
        resolved = coerced.resolved_intervals()
    except ValidationError as exc:
        raise _Bad(f"not an OpenADR 3 event: {_pydantic_summary(exc)}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _Bad(f"not an OpenADR 3 event: {type(exc).__name__}: {exc}") from None
    descriptors = {
        **_descriptors(program_descriptors),
        **_descriptors(event.get("payloadDescriptors")),
    }
    ids = [iv.id for iv in resolved]
    if len(set(ids)) != len(ids):
        raise _Bad(f"interval ids repeat ({ids})")
    base = {
        "event_id": eid,
        "program_id": program_id,
        "event_name": event.get("eventName") if isinstance(event.get("eventName"), str) else None,
        "priority": priority,
        "modified_at": _time_or_none(event.get("modificationDateTime")),
        "received_at": ctx.received_at,
        "as_of": ctx.as_of,
        "cancelled": False,
    }
    out, ends, unknown = [], [], set()
    for k, iv in enumerate(resolved):
        where = f"intervals[{k}] (id {iv.id})"
        ip = iv.interval_period
        if ip is None or ip.start is None:
            raise _Bad(
                f"{where}: no start: neither it nor the event has intervalPeriod.start "
                "(or a previous interval to follow)"
            )
        if ip.duration is None:
            raise _Bad(f"{where}: no intervalPeriod.duration (neither its own nor the event's)")
        start = max(_utc(pd.Timestamp(ip.start.isoformat())), EPOCH)
        infinite = open_ended(ip.duration)
        zero = not infinite and ip.duration.total_seconds() == 0
        end = OPEN_END if infinite else min(_utc(pd.Timestamp(ip.period[1].isoformat())), OPEN_END)
        if end < start:
            raise _Bad(f"{where}: negative duration {_dur(ip.duration)}")
        if not isinstance(iv.payloads, list) or not iv.payloads:
            raise _Bad(f"{where}: no payloads")
        for p in iv.payloads:
            ptype = p.type
            if ptype not in PAYLOAD_TYPES:
                unknown.add(ptype)
                continue
            desc = descriptors.get(ptype, {})
            pwhere = f"{where} payload {ptype}"
            values = p._raw.get("values") if isinstance(p._raw, dict) else p.values
            if not isinstance(values, list) or not values:
                raise _Bad(f"{pwhere}: empty 'values'")
            if ptype in ALERT_TYPES:
                if zero:
                    end = OPEN_END  # PT0S: "instantaneous or infinity, depending on payloadType"
                pieces = [(0, start, end, values[0])]
            else:
                if zero:
                    raise _Bad(f"{pwhere}: duration PT0S (instantaneous) cannot be planned")
                if len(values) > 1 and infinite:
                    raise _Bad(f"{pwhere}: {len(values)} values over an open-ended interval")
                step = (end - start) / len(values)
                pieces = [
                    (
                        j,
                        start + j * step,
                        end if j == len(values) - 1 else start + (j + 1) * step,
                        v,
                    )
                    for j, v in enumerate(values)
                ]
            for j, s, e, v in pieces:
                value, unit, currency, text = _normalise(ptype, v, desc, pwhere, len(values) > 1, j)
                for site, label in sites:
                    out.append(
                        {
                            **base,
                            "site": site,
                            "target": label,
                            "payload_type": ptype,
                            "interval_id": int(iv.id),
                            "sub_interval": j,
                            "start": s,
                            "end": e,
                            "value": value,
                            "unit": unit,
                            "currency": currency,
                            "source_value": _dumps(v),
                            "source_unit": desc.get("units"),
                            "text": text,
                        }
                    )
        ends.append(end)
    for ptype in sorted(unknown):
        problem(
            eid,
            "unknown_payload_type",
            f"{who}: payload type {ptype!r} is not one gridflex plans on ({', '.join(PAYLOAD_TYPES)}); "
            "kept in raw.openadr_events, not planned on",
        )
    if not sites:
        problem(
            eid,
            "unknown_target",
            f"{who}: its targets {_dumps(event.get('targets'))} name no fleet site (known: "
            f"{', '.join(sorted(ctx.site_of_target)) or '-'}"
            + (f"; VEN {ctx.ven_name!r}" if ctx.ven_name else "")
            + "); kept in raw.openadr_events, not planned on",
        )
    del unmatched  # unmatched values are normal when one event targets several customers
    return out, (max(ends) if ends else None)


def _sanitised(event: Mapping[str, Any]) -> tuple[dict, Callable[[Any], bool]]:
    """A copy ``openadr3.coerce`` can read, and a test for "this resolved duration is infinity".

    - targets are read by :func:`_sites_of` (3.0.1 valuesMaps do not fit the library's
      ``list[str]``); ``event.duration`` is not applied.
    - ``P9999Y`` (the spec's infinity) becomes ``P100Y``: ``start + P9999Y`` overflows
      Python's datetime (the library raises ``year 12025 is out of range``).
    - a start before 1970 ("the beginning of time") becomes 1970-01-01T00:00:00Z.
    Malformed times are checked here with their field's path, so a message can name it.
    """
    e = copy.deepcopy(dict(event))
    e["objectType"] = "EVENT"
    e.pop("targets", None)
    e.pop("duration", None)
    periods = [("intervalPeriod", e.get("intervalPeriod"))]
    for k, iv in enumerate(e.get("intervals") or []):
        if not isinstance(iv, dict):
            raise _Bad(f"intervals[{k}] is {type(iv).__name__}, expected an object")
        periods.append((f"intervals[{k}].intervalPeriod", iv.get("intervalPeriod")))
        payloads = iv.get("payloads")
        if not isinstance(payloads, list) or not payloads:
            raise _Bad(f"intervals[{k}] has no payloads")
        for j, p in enumerate(payloads):
            if not isinstance(p, dict) or not isinstance(p.get("type"), str):
                raise _Bad(f"intervals[{k}].payloads[{j}] has no 'type'")
            if not isinstance(p.get("values"), list):
                raise _Bad(f"intervals[{k}].payloads[{j}] ({p['type']}) has no 'values' list")
    for path, ip in periods:
        if ip is None:
            continue
        if not isinstance(ip, dict):
            raise _Bad(f"{path} is {type(ip).__name__}, expected an object")
        start = ip.get("start")
        if start is not None:
            ts = _time_or_none(start)
            if ts is None:
                if not _ancient(start):
                    raise _Bad(f"{path}.start {start!r} is not an ISO 8601 time")
                ip["start"] = "1970-01-01T00:00:00Z"
            elif ts < EPOCH:
                ip["start"] = "1970-01-01T00:00:00Z"
        dur = ip.get("duration")
        if dur is not None:
            d = _duration_or_none(dur)
            if d is None:
                raise _Bad(f"{path}.duration {dur!r} is not an ISO 8601 duration (e.g. PT1H)")
            if _infinite(d):
                ip["duration"] = "P100Y"
        rnd = ip.get("randomizeStart")
        if rnd is not None and _duration_or_none(rnd) is None:
            raise _Bad(f"{path}.randomizeStart {rnd!r} is not an ISO 8601 duration")
    return e, _infinite


def _infinite(d) -> bool:
    return getattr(d, "years", 0) >= 100


def _ancient(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[:4].isdigit() and int(value.strip()[:4]) < 1970


def _sites_of(targets: Any, ctx: _Ctx) -> tuple[list[tuple[str, str]], list[str]]:
    """``[(site, label)]`` an event applies to, and the target values that matched no site."""
    if targets is None or targets == []:
        return [(s, "*") for s in ctx.all_sites], []
    if not isinstance(targets, list):
        raise _Bad(f"targets {_dumps(targets)} is not a list")
    found: dict[str, str] = {}
    unmatched: list[str] = []

    def add(site: str, label: str) -> None:
        found.setdefault(site, label)

    for k, t in enumerate(targets):
        if isinstance(t, str):  # OpenADR 3.1: a target is a string
            if ctx.ven_name and t == ctx.ven_name:
                for s in ctx.all_sites:
                    add(s, t)
            elif t in ctx.site_of_target:
                add(ctx.site_of_target[t], t)
            else:
                unmatched.append(t)
            continue
        if not isinstance(t, Mapping) or not isinstance(t.get("values"), list):
            raise _Bad(f"targets[{k}] {_dumps(t)} is neither a string nor {{type, values}}")
        ttype = str(t.get("type") or "")
        for v in t["values"]:
            v = str(v)
            label = f"{ttype}:{v}"
            if ttype == "VEN_NAME" and ctx.ven_name and v == ctx.ven_name:
                for s in ctx.all_sites:
                    add(s, label)
            elif label in ctx.site_of_target:
                add(ctx.site_of_target[label], label)
            elif ttype != "VEN_NAME" and v in ctx.site_of_target:
                add(ctx.site_of_target[v], label)
            else:
                unmatched.append(label)
    order = {s: i for i, s in enumerate(ctx.all_sites)}
    return sorted(found.items(), key=lambda kv: order.get(kv[0], len(order))), unmatched


def _descriptors(raw: Any) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if isinstance(raw, list):
        for d in raw:
            if isinstance(d, Mapping) and isinstance(d.get("payloadType"), str):
                if d.get("objectType", "EVENT_PAYLOAD_DESCRIPTOR") != "REPORT_PAYLOAD_DESCRIPTOR":
                    out.setdefault(d["payloadType"], dict(d))
    return out


def _normalise(
    ptype: str, v: Any, desc: Mapping[str, Any], where: str, multi: bool, j: int
) -> tuple[float, str, str | None, str | None]:
    """``(value, unit, currency, text)`` of one payload value (see the module doc's table)."""
    at = f"{where} values[{j}]" if multi else where
    units = desc.get("units")
    u = units.strip().upper() if isinstance(units, str) else None
    if ptype in ALERT_TYPES:
        if not isinstance(v, str) or not v.strip():
            raise _Bad(f"{at}: {v!r} is not the alert's message (a non-empty string)")
        return 1.0, "alert", None, v
    if not _is_number(v):
        raise _Bad(f"{at}: {v!r} is not a number")
    x = float(v)
    if ptype == "SIMPLE":
        if x not in (0.0, 1.0, 2.0, 3.0):
            raise _Bad(f"{at}: SIMPLE level {v!r} is not one of 0, 1, 2, 3")
        return x, "level", None, None
    if ptype in POWER_TYPES:
        if x < 0:
            raise _Bad(f"{at}: {v!r} is negative")
        if u not in POWER_UNITS:
            raise _Bad(
                f"{at}: units {units!r} in its payloadDescriptor is not one of "
                f"{', '.join(POWER_UNITS)} (a limit without units could be kW or MW)"
            )
        return x * POWER_UNITS[u], "MW", None, None
    if ptype in PRICE_TYPES:
        currency = desc.get("currency")
        if u not in ENERGY_UNITS:
            raise _Bad(
                f"{at}: units {units!r} in its payloadDescriptor is not one of "
                f"{', '.join(ENERGY_UNITS)} (the energy unit the price is per)"
            )
        if not isinstance(currency, str) or not currency.strip():
            raise _Bad(f"{at}: no currency in its payloadDescriptor")
        return (
            x * ENERGY_UNITS[u],
            f"{currency.strip().upper()}/MWh",
            currency.strip().upper(),
            None,
        )
    if ptype == "GHG":
        if x < 0:
            raise _Bad(f"{at}: {v!r} is negative")
        if u not in GHG_UNITS:
            raise _Bad(f"{at}: units {units!r} for GHG (the spec's unit is g/kWh)")
        return x, "gCO2/kWh", None, None
    raise _Bad(f"{at}: unhandled payload type {ptype}")  # pragma: no cover


# -------------------------------------------------------------------------------------------------
# small helpers
# -------------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _time_or_none(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = openadr3.parse_datetime(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if dt is None:
        return None
    try:
        return _utc(pd.Timestamp(dt.isoformat()))
    except (ValueError, OverflowError):
        return None


def _duration_or_none(value: Any):
    try:
        d = openadr3.parse_duration(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return d if hasattr(d, "total_seconds") else None


def _dur(d) -> str:
    try:
        return str(pd.Timedelta(seconds=d.total_seconds()))
    except (ValueError, OverflowError):  # pragma: no cover
        return str(d)


def _pydantic_summary(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')} (got {e.get('input')!r})"[:200])
    return "; ".join(parts)


def _frame(rows: list[dict], columns: list[str], times: Sequence[str] = ()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in times:
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    for c in ("usable",):
        if c in df:
            df[c] = df[c].astype(bool)
    for c in ("n_rows",):
        if c in df:
            df[c] = df[c].astype("int64")
    return df


def _interval_frame(rows: list[dict]) -> pd.DataFrame:
    df = _frame(
        rows, INTERVAL_COLUMNS, times=("start", "end", "modified_at", "received_at", "as_of")
    )
    df["priority"] = df["priority"].astype("Int64")
    df["interval_id"] = df["interval_id"].astype("int64")
    df["sub_interval"] = df["sub_interval"].astype("int64")
    df["value"] = df["value"].astype("float64")
    df["cancelled"] = df["cancelled"].astype(bool)
    return df


def _problem_frame(rows: list[dict]) -> pd.DataFrame:
    df = _frame(rows, PROBLEM_COLUMNS, times=("received_at", "as_of"))
    return df.drop_duplicates(["event_id", "problem"]).reset_index(drop=True)


# -------------------------------------------------------------------------------------------------
# Client
# -------------------------------------------------------------------------------------------------
class _Retry(Exception):
    def __init__(
        self, kind: str, detail: str, status: int | None = None, wait: float | None = None
    ):
        super().__init__(detail)
        self.kind, self.detail, self.status, self.wait = kind, detail, status, wait


@dataclass
class _Creds:
    mode: str  # "oauth" | "token"
    names: str  # the environment variable(s) to check, for messages
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    token: SecretStr | None = None


class VtnClient:
    """Reads programs and events from an OpenADR 3 VTN and manages gridflex's subscription.

    Args:
        base_url: the VTN's API root (e.g. ``https://vtn.example/openadr3/3.0.1``).
        client_id_env, client_secret_env: names of the environment variables holding OAuth2
            client credentials (used when both are set).
        token_env: name of the environment variable holding a static bearer token (used when
            the client credentials are not set).
        ven_name: the ``clientName`` of gridflex's subscription.
        token_url: the token endpoint (default ``{base_url}/auth/token``).
        max_attempts, backoff_initial, backoff_max: retries of 5xx / 429 / transport errors.
        retry_after_cap: longest wait a 429's ``Retry-After`` may impose, seconds.
        timeout_s: connect / read timeout of each request, seconds (a timeout is retried).
        environ: where the variables are read (default ``os.environ``; tests pass a dict).
        sleep: the sleep between attempts (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id_env: str = CLIENT_ID_ENV,
        client_secret_env: str = CLIENT_SECRET_ENV,
        token_env: str = TOKEN_ENV,
        ven_name: str = "gridflex",
        token_url: str | None = None,
        max_attempts: int = 3,
        backoff_initial: float = 0.2,
        backoff_max: float = 2.0,
        retry_after_cap: float = 10.0,
        timeout_s: float = 10.0,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"vtn_url must be an http(s) URL, got {base_url!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url or f"{self.base_url}/auth/token"
        self.ven_name = ven_name
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_after_cap = retry_after_cap
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._secrets: set[str] = set()
        self._creds = self._read_creds(
            os.environ if environ is None else environ, client_id_env, client_secret_env, token_env
        )
        self._oa: openadr3.OpenADRClient | None = None

    def __repr__(self) -> str:
        return f"VtnClient(base_url={self.base_url!r}, auth={self._creds.mode}, secrets='***')"

    # -- secrets --
    def _read_creds(self, env, id_env: str, secret_env: str, token_env: str) -> _Creds:
        cid, secret, token = env.get(id_env, ""), env.get(secret_env, ""), env.get(token_env, "")
        for s in (cid, secret, token):
            self._add_secret(s)
        if cid and secret:
            return _Creds("oauth", f"{id_env} / {secret_env}", SecretStr(cid), SecretStr(secret))
        if token:
            return _Creds("token", token_env, token=SecretStr(token))
        if cid or secret:
            missing = secret_env if cid else id_env
            raise AuthError(
                f"OpenADR VTN {self.base_url}",
                f"{missing} is not set (OAuth2 client credentials need both {id_env} and "
                f"{secret_env}; or set {token_env} to a bearer token)",
            )
        raise AuthError(
            f"OpenADR VTN {self.base_url}",
            f"no credentials: set {id_env} and {secret_env} (OAuth2 client credentials), or "
            f"{token_env} (a bearer token)",
        )

    def _add_secret(self, s: str | None) -> None:
        add_secret(self._secrets, s)

    def redact(self, text: str) -> str:
        """``text`` with every secret this client knows (credentials, tokens) blanked."""
        return redact(text, self._secrets)

    # -- lifecycle --
    def close(self) -> None:
        if self._oa is not None:
            self._oa.close()
            self._oa = None

    def __enter__(self) -> VtnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints --
    def programs(self) -> list[dict]:
        """Every program (all pages)."""
        return self._paged("/programs", lambda c, p: c.get_programs(**p), {})

    def events(
        self,
        program_id: str | None = None,
        *,
        target_type: str | None = None,
        target_values: Sequence[str] | None = None,
    ) -> list[dict]:
        """Every event (all pages), optionally filtered by program or targets (3.0.1 query
        parameters ``programID``, ``targetType``, ``targetValues``). Raw dicts as received."""
        params: dict[str, Any] = {}
        if program_id:
            params["programID"] = program_id
        if target_type:
            params["targetType"] = target_type
            params["targetValues"] = list(target_values or [])
        return self._paged("/events", lambda c, p: c.get_events(**p), params)

    def subscriptions(self, client_name: str | None = None) -> list[dict]:
        params = {"clientName": client_name} if client_name else {}
        return self._paged("/subscriptions", lambda c, p: c.get_subscriptions(**p), params)

    def subscribe(
        self,
        callback_url: str,
        bearer_token: str,
        *,
        client_name: str | None = None,
        program_id: str | None = None,
    ) -> dict:
        """Ask the VTN to push EVENT creations, updates and deletions to ``callback_url`` with
        ``Authorization: Bearer <bearer_token>``. Idempotent: a subscription with the same
        ``clientName`` and callback URL (and program) is reused, updated (PUT) if its token or
        operations differ. Returns the subscription as the VTN holds it."""
        self._add_secret(bearer_token)
        name = client_name or self.ven_name
        wanted = {
            "objects": ["EVENT"],
            "operations": list(SUBSCRIBE_OPERATIONS),
            "callbackUrl": callback_url,
            "bearerToken": bearer_token,
        }
        body: dict[str, Any] = {"clientName": name, "objectOperations": [wanted]}
        if program_id:
            body["programID"] = program_id
        for sub in self.subscriptions(name):
            if not isinstance(sub, dict) or sub.get("clientName") != name:
                continue
            if program_id and sub.get("programID") not in (None, program_id):
                continue
            ops = [o for o in sub.get("objectOperations") or [] if isinstance(o, dict)]
            if not any(o.get("callbackUrl") == callback_url for o in ops):
                continue
            same = any(
                o.get("callbackUrl") == callback_url
                and o.get("bearerToken") == bearer_token
                and "EVENT" in (o.get("objects") or [])
                and set(SUBSCRIBE_OPERATIONS) <= set(o.get("operations") or [])
                for o in ops
            )
            if same:
                return sub
            sid = str(sub.get("id"))
            return self._json(
                "PUT", f"/subscriptions/{sid}", lambda c, sid=sid: c.update_subscription(sid, body)
            )
        return self._json("POST", "/subscriptions", lambda c: c.create_subscription(body))

    def unsubscribe(self, subscription_id: str) -> dict:
        return self._json(
            "DELETE",
            f"/subscriptions/{subscription_id}",
            lambda c: c.delete_subscription(subscription_id),
        )

    # -- internals --
    def _paged(self, path: str, get, params: dict[str, Any]) -> list[dict]:
        out: list[dict] = []
        seen: set[str] = set()
        skip = 0
        for _ in range(10_000):
            page = self._json(
                "GET",
                path,
                lambda c, skip=skip: get(c, {**params, "skip": skip, "limit": PAGE_LIMIT}),
                params={**params, "skip": skip},
            )
            where = f"OpenADR VTN {self.base_url} GET {path}"
            if not isinstance(page, list):
                raise SourceError(where, f"expected a JSON array, got {type(page).__name__}")
            ids = [str(x.get("id")) for x in page if isinstance(x, dict) and x.get("id")]
            if page and ids and all(i in seen for i in ids):
                log.warning("%s: the VTN ignores 'skip' (page %d repeats); stopping", where, skip)
                break
            seen.update(ids)
            out.extend(page)
            if len(page) < PAGE_LIMIT:
                break
            skip += len(page)
        return out

    def _client(self) -> openadr3.OpenADRClient:
        if self._oa is None:
            token = self._fetch_token() if self._creds.mode == "oauth" else None
            if token is None:
                token = self._creds.token.get_secret_value()  # type: ignore[union-attr]
            self._oa = openadr3.create_ven_client(self.base_url, token=token)
            # the library's httpx client is built with httpx's 5 s default: ours instead
            self._oa._http.timeout = httpx.Timeout(self.timeout_s)
        return self._oa

    def _fetch_token(self) -> str:
        creds = self._creds
        cid = creds.client_id.get_secret_value()  # type: ignore[union-attr]
        secret = creds.client_secret.get_secret_value()  # type: ignore[union-attr]

        def call() -> str:
            return openadr3.fetch_token(self.base_url, cid, secret, token_url=self.token_url)

        where = f"OpenADR VTN {self.base_url} POST {self._path(self.token_url)}"
        token = self._with_retries(where, call, token=True)
        if not isinstance(token, str) or not token:
            raise SourceError(where, "the token endpoint answered no access_token")
        self._add_secret(token)
        return token

    def _json(self, method: str, path: str, call, params: Mapping[str, Any] | None = None) -> Any:
        """``call(client) -> httpx.Response`` with retries, error mapping and one token refresh."""
        q = "&".join(f"{k}={v}" for k, v in (params or {}).items() if v not in (None, [], ""))
        where = self.redact(f"OpenADR VTN {self.base_url} {method} {path}" + (f"?{q}" if q else ""))
        refreshed = False
        while True:
            try:
                response = self._with_retries(where, lambda: call(self._client()))
                break
            except AuthError as exc:
                if self._creds.mode == "oauth" and exc.status == 401 and not refreshed:
                    refreshed = True  # the token may have expired: fetch a new one once
                    self.close()
                    continue
                raise
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise SourceError(
                where,
                f"malformed JSON in the VTN's answer ({type(exc).__name__}); body starts "
                f"{self._snippet(response)!r}",
            ) from None

    def _with_retries(self, where: str, call, *, token: bool = False):
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=lambda rs: log.warning(
                "%s: %s; attempt %d/%d, retrying",
                where,
                getattr(rs.outcome.exception(), "detail", "?"),
                rs.attempt_number,
                self.max_attempts,
            ),
            reraise=True,
        )
        try:
            return retrying(self._attempt, where, call, token)
        except _Retry as last:
            cls = {"server": ServerError, "rate_limited": RateLimitedError}.get(
                last.kind, TransportFailure
            )
            hint = (
                f"is the VTN at {self.base_url} up?"
                if last.kind == "transport"
                else f"the VTN at {self.base_url} is failing"
            )
            raise cls(
                where,
                f"gave up after {self.max_attempts} attempt(s): {last.detail}; {hint}",
                status=last.status,
            ) from None

    def _attempt(self, where: str, call, token: bool):
        try:
            result = call()
        except SourceError:  # ours (e.g. from fetching a token inside this call): as it is
            raise
        except httpx.TimeoutException as exc:
            raise _Retry("transport", f"timeout ({type(exc).__name__})") from None
        except httpx.HTTPStatusError as exc:  # openadr3.fetch_token raises for status
            response = exc.response
        except httpx.TransportError as exc:
            raise _Retry(
                "transport", f"connection failed ({type(exc).__name__}: {self.redact(str(exc))})"
            ) from None
        except (KeyError, json.JSONDecodeError, ValueError) as exc:
            raise SourceError(
                where,
                f"the token endpoint's answer is not {{'access_token': ...}} ({type(exc).__name__})",
            ) from None
        else:
            if not isinstance(result, httpx.Response):
                return result  # the token
            response = result
        status = response.status_code
        if status < 300:
            return response
        if status in (401, 403):
            what = "credentials refused" if status == 401 else "not allowed for these credentials"
            if token:
                what = "client credentials refused by the token endpoint"
            raise AuthError(
                where,
                f"{status} {response.reason_phrase} ({what}): check {self._creds.names}",
                status,
            )
        if status == 400 and token:
            raise AuthError(
                where,
                f"400 from the token endpoint ({self._oauth_error(response)}): check "
                f"{self._creds.names}",
                status,
            )
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise _Retry("rate_limited", "429 rate limited", status, wait)
        if status >= 500:
            raise _Retry(
                "server", f"{status} {response.reason_phrase}: {self._problem(response)}", status
            )
        if 300 <= status < 400:
            raise ClientError(
                where,
                f"{status} redirect not followed (credentials are not sent elsewhere): fix vtn_url",
                status,
            )
        if status == 404:
            raise NotFoundError(where, f"404 Not Found: {self._problem(response)}", status)
        raise ClientError(
            where, f"{status} {response.reason_phrase}: {self._problem(response)}", status
        )

    def _wait(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, _Retry) and exc.wait is not None:
            return min(exc.wait, self.retry_after_cap)
        return min(self.backoff_max, self.backoff_initial * 2 ** (rs.attempt_number - 1))

    def _problem(self, response: httpx.Response) -> str:
        """An error answer's ``title: detail`` (the spec's problem shape), else its first bytes;
        secrets blanked."""
        try:
            body = response.json()
        except Exception:  # noqa: BLE001 - an unreadable body is described, never raised
            body = None
        if isinstance(body, dict) and ("title" in body or "detail" in body):
            text = f"{body.get('title', '')}: {body.get('detail', '')}".strip(": ")
            return self.redact(" ".join(text.split())[:200])
        return self._snippet(response)

    def _oauth_error(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except Exception:  # noqa: BLE001
            return "no error code"
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return self.redact(body["error"][:60])
        return "no error code"

    def _snippet(self, response: httpx.Response, limit: int = 200) -> str:
        try:
            text = response.text
        except Exception:  # noqa: BLE001
            text = "<undecodable body>"
        text = " ".join(text.split())
        return self.redact(text[:limit] + ("…" if len(text) > limit else ""))

    def _path(self, url: str) -> str:
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url


def site_targets(resources: Mapping[str, str]) -> dict[str, str]:
    """``{site: openadr_resource}`` -> ``site_of_target`` for :func:`parse_events`: each resource
    name (and ``RESOURCE_NAME:<name>``) maps to its site. Two sites with one resource name are
    refused (an event for it could not be placed)."""
    out: dict[str, str] = {}
    for site, res in resources.items():
        name = res or site
        if name in out and out[name] != site:
            raise ValueError(
                f"sites {out[name]!r} and {site!r} share the OpenADR resource name {name!r}"
            )
        out[name] = site
        out[f"RESOURCE_NAME:{name}"] = site
    return out
