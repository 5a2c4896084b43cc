"""Grid events (OpenADR 3) into the warehouse: poll the fleet's VTN, parse, store.

- ``fleet.grid_events.source == "none"``: nothing is fetched; the result says so.
- Otherwise one poll per call: ``GET /programs`` and every page of ``GET /events``, parsed for the
  fleet's sites (a site's OpenADR target is its ``openadr_resource``, default its name) and stored
  by :func:`warehouse.grid_events.store_events` in one transaction, with a ``raw.ingest_log`` row.
- When ``push_callback_url`` is set, the subscription is ensured too (idempotent; the token the VTN
  must send is read from ``GRIDFLEX_OPENADR_PUSH_TOKEN``). A failure there is a note, not an error.
- **A VTN that is down, refuses the credentials or fails (5xx) does not fail the hour**: the error
  (naming the VTN URL and the environment variables to check, never a secret) is returned and
  logged in ``raw.ingest_log``, nothing stored changes, and the planner keeps using the events
  already stored.

:func:`push_handler` is the ``on_events`` of a :class:`sources.openadr_push.PushReceiver` that
stores what the VTN pushes the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from mpc.fleet import Fleet
from sources.frames import SourceError, utc_now
from sources.http import HttpError
from sources.openadr import (
    PUSH_TOKEN_ENV,
    RAW_COLUMNS,
    SOURCE,
    ParsedEvents,
    VtnClient,
    parse_events,
    site_targets,
)
from warehouse import Warehouse, Write
from warehouse.grid_events import EVENTS, RAW, GridEventStats, store_events

log = logging.getLogger("gridflex.pipelines.grid_events")

NO_SOURCE = "no grid-event source configured"
ACTIVE_COLUMNS = [
    "site",
    "payload_type",
    "start",
    "end",
    "value",
    "unit",
    "event_id",
    "modified_at",
    "as_of",
]


@dataclass
class GridEventsIngest:
    """What one :func:`ingest_grid_events` did."""

    source: str
    as_of: pd.Timestamp
    stats: GridEventStats | None = None
    programs: int = 0
    events_seen: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    subscription_id: str | None = None
    active: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ACTIVE_COLUMNS))

    @property
    def ok(self) -> bool:
        return self.error is None


def fleet_targets(fleet: Fleet) -> dict[str, str]:
    """``site_of_target`` for :func:`sources.openadr.parse_events`: each site's OpenADR resource
    name (default: the site's name) -> the site."""
    return site_targets({name: s.openadr_resource or name for name, s in fleet.sites.items()})


def client_for(fleet: Fleet, environ: Mapping[str, str] | None = None, **kwargs) -> VtnClient:
    cfg = fleet.grid_events
    return VtnClient(
        cfg.vtn_url or "",
        client_id_env=cfg.client_id_env,
        client_secret_env=cfg.client_secret_env,
        token_env=cfg.token_env,
        ven_name=cfg.ven_name,
        environ=environ,
        **({"timeout_s": cfg.timeout_s, "max_attempts": cfg.max_attempts} | kwargs),
    )


def ingest_grid_events(
    wh: Warehouse,
    fleet: Fleet,
    as_of: pd.Timestamp,
    *,
    partition_key: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], pd.Timestamp] = utc_now,
    client_options: Mapping | None = None,
) -> GridEventsIngest:
    """Poll the fleet's VTN for the hour ``as_of`` and store what it answers (see the module doc).

    ``environ``: where the secrets' variables are read (default ``os.environ``);
    ``client_options``: extra :class:`~sources.openadr.VtnClient` arguments (retries, sleep)."""
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    cfg = fleet.grid_events
    if cfg.source == "none":
        return GridEventsIngest("none", as_of, notes=[NO_SOURCE])
    env = os.environ if environ is None else environ
    label = f"{SOURCE}:{cfg.vtn_url}"
    out = GridEventsIngest(label, as_of)
    try:
        with client_for(fleet, env, **dict(client_options or {})) as client:
            programs = client.programs()
            events = client.events()
            received = clock()
            out.programs, out.events_seen = len(programs), len(events)
            if cfg.push_callback_url:
                out.subscription_id = _subscribe(client, cfg.push_callback_url, env, out.notes)
    except (HttpError, SourceError) as exc:
        out.error = str(exc)
        log.warning("grid events: %s", out.error)
        out.notes.append(f"VTN poll failed, stored events kept: {out.error}")
        _log_failure(wh, label, partition_key, as_of, out.error)
        out.active = active_intervals(wh, fleet, as_of)
        return out
    parsed = parse_events(
        events,
        received_at=received,
        as_of=as_of,
        site_of_target=fleet_targets(fleet),
        all_sites=list(fleet.sites),
        via="poll",
        ven_name=cfg.ven_name,
        programs=programs,
    )
    out.stats = store_events(
        wh,
        parsed,
        log={
            "source": label,
            "partition_key": partition_key,
            "window_start": as_of.to_pydatetime(),
            "window_end": as_of.to_pydatetime(),
            "notes": f"{len(events)} event(s) polled, {len(parsed.problems)} problem(s)",
        },
    )
    out.notes.extend(p for p in parsed.problems["problem"].head(20))
    out.active = active_intervals(wh, fleet, as_of)
    return out


def _subscribe(client: VtnClient, url: str, env: Mapping[str, str], notes: list[str]) -> str | None:
    token = env.get(PUSH_TOKEN_ENV, "")
    if not token:
        notes.append(f"push not subscribed: set {PUSH_TOKEN_ENV} (the token the VTN must send)")
        return None
    try:
        sub = client.subscribe(url, token)
    except (HttpError, SourceError) as exc:
        notes.append(f"push subscription failed (polling goes on): {exc}")
        return None
    return str(sub.get("id")) if isinstance(sub, dict) else None


def _log_failure(wh: Warehouse, label: str, partition_key, as_of: pd.Timestamp, error: str) -> None:
    empty = pd.DataFrame({c: pd.Series([], dtype="object") for c in RAW_COLUMNS})
    try:
        wh.replace_windows(
            [
                Write(
                    RAW,
                    empty,
                    mode="upsert",
                    log={
                        "source": label,
                        "partition_key": partition_key,
                        "window_start": as_of.to_pydatetime(),
                        "window_end": as_of.to_pydatetime(),
                        "notes": f"VTN poll failed: {error}"[:2000],
                    },
                )
            ]
        )
    except Exception:  # noqa: BLE001 - the failure is returned anyway; the log row is a bonus
        log.exception("grid events: could not log the failed poll")


def active_intervals(wh: Warehouse, fleet: Fleet, as_of: pd.Timestamp) -> pd.DataFrame:
    """The stored intervals not cancelled and not over at ``as_of``, for the fleet's sites."""
    sites = list(fleet.sites)
    return wh.query(
        f"select {', '.join(_q(c) for c in ACTIVE_COLUMNS)} from {EVENTS} "
        'where not cancelled and "end" > ? and site in (select unnest(?::VARCHAR[])) '
        "order by site, start, payload_type, event_id",
        [as_of.to_pydatetime(), sites],
    )


def push_handler(
    wh: Warehouse, fleet: Fleet, *, on_stored: Callable[[GridEventStats], None] | None = None
) -> Callable[[ParsedEvents], GridEventStats]:
    """``on_events`` for a :class:`sources.openadr_push.PushReceiver`: store each pushed batch."""
    label = f"{SOURCE}-push:{fleet.grid_events.vtn_url}"

    def on_events(parsed: ParsedEvents) -> GridEventStats:
        stats = store_events(wh, parsed, log={"source": label, "notes": "pushed notification"})
        if on_stored is not None:
            on_stored(stats)
        return stats

    return on_events


def _q(c: str) -> str:
    return f'"{c}"'
