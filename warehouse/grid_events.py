"""Store OpenADR 3 grid events (parsed by ``sources.openadr.parse_events``): what was received, the
tidy intervals of each event's latest version, and the problems — in ONE transaction, read and
decided under the writer lock (:meth:`warehouse.Warehouse.read_then_write`), so a concurrent poll
and push cannot interleave.

Rules (``staging.grid_event_state`` holds the version applied per event):

- ``raw.openadr_events``: every distinct payload is appended once and never changed or deleted
  (the key includes the payload's SHA-256, so two different payloads claiming one modification are
  both kept); receiving the same payload again changes nothing.
- A version newer than the one applied (``modificationDateTime``) replaces the event's intervals:
  rows it still has are updated, rows it lacks stay with ``cancelled = true``,
  ``cancel_reason = 'superseded'`` and ``superseded_at`` = the new version's modification time.
  Nothing stored is deleted. The same version again is a no-op (rows keep their first
  ``received_at`` and ``as_of``).
- An older version arriving late (or any version after a deletion) is ignored, counted as
  ``stale`` and recorded as a problem.
- A deletion (``DELETE`` notification: how OpenADR 3 cancels) marks every row of the event
  ``cancelled = true``, ``cancel_reason = 'deleted'``. A deletion of an event never received is a
  problem (``unknown_cancellation``), and the event id is remembered as deleted.
- Events that overlap are all kept; the planner takes the tightest limit.
- A malformed version changes nothing but the raw and problem tables; the previous version stays.

Imports nothing else of gridflex: ``parsed`` is any object with the frames ``raw``, ``intervals``,
``problems``, ``versions`` and the times ``received_at`` / ``as_of``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from warehouse.db import Warehouse, Write

RAW = "raw.openadr_events"
STATE = "staging.grid_event_state"
EVENTS = "staging.grid_events"
PROBLEMS = "staging.grid_event_problems"

KEY = ["event_id", "interval_id", "sub_interval", "payload_type", "site"]
EVENT_COLUMNS = [
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
    "cancel_reason",
    "superseded_at",
]
#: what makes two versions of a row different (not when they were received)
CONTENT = [c for c in EVENT_COLUMNS if c not in (*KEY, "received_at", "as_of")]
RAW_KEY = ["event_id", "modification_dt", "operation", "via", "payload_sha256"]
STATE_COLUMNS = [
    "event_id",
    "program_id",
    "event_name",
    "modified_at",
    "deleted",
    "deleted_at",
    "n_rows",
    "received_at",
    "as_of",
]
PROBLEM_COLUMNS = ["event_id", "kind", "problem", "received_at", "as_of"]


class ParsedLike(Protocol):
    raw: pd.DataFrame
    intervals: pd.DataFrame
    problems: pd.DataFrame
    versions: pd.DataFrame
    received_at: pd.Timestamp
    as_of: pd.Timestamp


@dataclass
class GridEventStats:
    """What one :func:`store_events` did. Per event version received: ``new`` (first version of
    an event), ``modified`` (a newer version, or the same one giving other rows), ``cancelled``
    (deletions applied), ``stale`` (older than, or after the deletion of, what is stored: ignored),
    ``unchanged`` (already stored), ``malformed`` (not usable: see the problems). ``problems``:
    new problem rows; ``raw_new``: new raw payloads; ``rows_*``: interval rows written."""

    received: int = 0
    new: int = 0
    modified: int = 0
    cancelled: int = 0
    stale: int = 0
    unchanged: int = 0
    malformed: int = 0
    problems: int = 0
    raw_new: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def store_events(wh: Warehouse, parsed: ParsedLike, *, log: dict | None = None) -> GridEventStats:
    """Write ``parsed`` (see the module doc) in one transaction; ``log``: a ``raw.ingest_log``
    row (``{"source": ..., "partition_key": ..., "notes": ...}``) written with it."""
    stats = GridEventStats(received=len(parsed.versions))

    def build(con) -> tuple[list[Write], GridEventStats]:
        ids = sorted(
            {str(x) for x in parsed.versions["event_id"]} | {str(x) for x in parsed.raw["event_id"]}
        )
        writes = _decide(con, parsed, ids, stats)
        if log is not None:
            if not any(w.table == EVENTS for w in writes):
                writes.append(Write(EVENTS, _empty(EVENT_COLUMNS), mode="upsert"))
            for w in writes:
                if w.table == EVENTS:
                    w.log = log
        return writes, stats

    out, stats = wh.read_then_write(build)
    for w_stats in out:
        if w_stats.table == EVENTS:
            stats.rows_inserted += w_stats.inserted
            stats.rows_updated += w_stats.updated
            stats.rows_unchanged += w_stats.unchanged
        elif w_stats.table == PROBLEMS:
            stats.problems += w_stats.inserted
        elif w_stats.table == RAW:
            stats.raw_new += w_stats.inserted
    return stats


def _decide(con, parsed: ParsedLike, ids: list[str], stats: GridEventStats) -> list[Write]:
    recv, as_of = _ts(parsed.received_at), _ts(parsed.as_of)
    state = {
        r["event_id"]: r
        for r in _read(
            con, f"select * from {STATE} where event_id in (select unnest(?::VARCHAR[]))", ids
        )
    }
    stored = pd.DataFrame(
        _read(con, f"select * from {EVENTS} where event_id in (select unnest(?::VARCHAR[]))", ids),
        columns=EVENT_COLUMNS,
    )
    rows: dict[str, list[dict]] = {
        eid: part.to_dict("records") for eid, part in stored.groupby("event_id", sort=False)
    }
    touched_rows: set[str] = set()
    touched_state: set[str] = set()
    problems: list[dict] = []

    def problem(eid: str, kind: str, text: str) -> None:
        problems.append(
            {"event_id": eid, "kind": kind, "problem": text, "received_at": recv, "as_of": as_of}
        )

    intervals = parsed.intervals
    for v in parsed.versions.to_dict("records"):
        eid = str(v["event_id"])
        if not bool(v["usable"]):
            stats.malformed += 1
            continue
        mod = _ts(v["modified_at"])
        cur = state.get(eid)
        if v["operation"] == "DELETE":
            if cur is None and not rows.get(eid):
                problem(
                    eid,
                    "unknown_cancellation",
                    f"cancellation (DELETE) of OpenADR event {eid!r} that gridflex never "
                    "received: nothing to cancel (kept in raw.openadr_events; a later version of "
                    "it will be ignored)",
                )
                state[eid] = _state(v, None, True, mod, 0, recv, as_of, cur)
                touched_state.add(eid)
            elif cur is not None and bool(cur["deleted"]):
                stats.unchanged += 1
            else:
                for r in rows.get(eid, []):
                    if not bool(r["cancelled"]):
                        r.update(cancelled=True, cancel_reason="deleted", superseded_at=mod)
                touched_rows.add(eid)
                state[eid] = _state(
                    v, cur["modified_at"] if cur else None, True, mod, 0, recv, as_of, cur
                )
                touched_state.add(eid)
                stats.cancelled += 1
            continue
        if cur is not None and bool(cur["deleted"]):
            stats.stale += 1
            problem(
                eid,
                "stale",
                f"OpenADR event {eid!r} modified {_iso(mod)} arrived after the event was deleted: "
                "ignored",
            )
            continue
        cur_mod = _ts(cur["modified_at"]) if cur is not None else None
        if cur_mod is not None and mod is not None and mod < cur_mod:
            stats.stale += 1
            problem(
                eid,
                "stale",
                f"OpenADR event {eid!r} modified {_iso(mod)} is older than the version applied "
                f"(modified {_iso(cur_mod)}): ignored",
            )
            continue
        mine = intervals[(intervals["event_id"] == eid) & (intervals["modified_at"] == mod)]
        new_rows = mine.drop_duplicates(KEY, keep="last").to_dict("records")
        merged, changed = _apply(rows.get(eid, []), new_rows, mod)
        if cur is None:
            stats.new += 1
        elif cur_mod is None or mod > cur_mod or changed:
            stats.modified += 1
        else:
            stats.unchanged += 1
        rows[eid] = merged
        if changed or cur is None:
            touched_rows.add(eid)
        if cur is None or mod != cur_mod or changed:
            state[eid] = _state(v, mod, False, None, len(new_rows), recv, as_of, None)
            touched_state.add(eid)

    writes: list[Write] = []
    raw = parsed.raw.drop_duplicates(RAW_KEY)
    if len(raw):
        have = {
            tuple(_norm(r[k]) for k in RAW_KEY)
            for r in _read(
                con,
                f"select {', '.join(RAW_KEY)} from {RAW} where event_id in "
                "(select unnest(?::VARCHAR[]))",
                ids,
            )
        }
        keep = [tuple(_norm(r[k]) for k in RAW_KEY) not in have for r in raw.to_dict("records")]
        raw = raw[keep]
        if len(raw):
            writes.append(Write(RAW, raw.reset_index(drop=True), mode="upsert"))
    parts = [parsed.problems[PROBLEM_COLUMNS], pd.DataFrame(problems, columns=PROBLEM_COLUMNS)]
    parts = [f for f in parts if len(f)]
    probs = (
        pd.concat(parts, ignore_index=True).drop_duplicates(["event_id", "problem"])
        if parts
        else pd.DataFrame(columns=PROBLEM_COLUMNS)
    )
    if len(probs):
        have_p = {
            (r["event_id"], r["problem"])
            for r in _read(
                con,
                f"select event_id, problem from {PROBLEMS} where event_id in "
                "(select unnest(?::VARCHAR[]))",
                sorted(set(probs["event_id"].astype(str))),
            )
        }
        probs = probs[
            [(e, p) not in have_p for e, p in zip(probs.event_id, probs.problem, strict=True)]
        ]
        if len(probs):
            probs = probs.assign(
                received_at=pd.to_datetime(probs["received_at"], utc=True),
                as_of=pd.to_datetime(probs["as_of"], utc=True),
            )
            writes.append(Write(PROBLEMS, probs.reset_index(drop=True), mode="upsert"))
    if touched_state:
        frame = pd.DataFrame([state[e] for e in sorted(touched_state)], columns=STATE_COLUMNS)
        writes.append(
            Write(
                STATE,
                _times(frame, ("modified_at", "deleted_at", "received_at", "as_of")),
                mode="upsert",
            )
        )
    if touched_rows:
        recs = [r for e in sorted(touched_rows) for r in rows.get(e, [])]
        if recs:
            frame = pd.DataFrame(recs, columns=EVENT_COLUMNS)
            frame = _times(
                frame, ("start", "end", "modified_at", "received_at", "as_of", "superseded_at")
            )
            frame["priority"] = pd.array(
                [None if _missing(x) else int(x) for x in frame["priority"]], dtype="Int64"
            )
            frame["cancelled"] = frame["cancelled"].astype(bool)
            writes.append(Write(EVENTS, frame, mode="upsert"))
    return writes


def _apply(stored: list[dict], new: list[dict], mod) -> tuple[list[dict], bool]:
    """The event's rows after applying a version with rows ``new`` (modified ``mod``), and
    whether anything differs from ``stored``."""
    old = {_key(r): r for r in stored}
    out, changed, seen = [], False, set()
    for r in new:
        k = _key(r)
        seen.add(k)
        row = {**r, "cancelled": False, "cancel_reason": None, "superseded_at": None}
        prev = old.get(k)
        if prev is not None and _content(prev) == _content(row):
            out.append(prev)  # the same row: keeps its first received_at / as_of
        else:
            out.append(row)
            changed = True
    for k, r in old.items():
        if k in seen:
            continue
        if not bool(r["cancelled"]):
            r = {**r, "cancelled": True, "cancel_reason": "superseded", "superseded_at": mod}
            changed = True
        out.append(r)
    return out, changed


def _state(v: dict, modified, deleted: bool, deleted_at, n_rows: int, recv, as_of, cur) -> dict:
    return {
        "event_id": str(v["event_id"]),
        "program_id": v.get("program_id")
        if not _missing(v.get("program_id"))
        else (cur or {}).get("program_id"),
        "event_name": v.get("event_name")
        if not _missing(v.get("event_name"))
        else (cur or {}).get("event_name"),
        "modified_at": modified,
        "deleted": deleted,
        "deleted_at": deleted_at,
        "n_rows": int(n_rows),
        "received_at": recv,
        "as_of": as_of,
    }


# -------------------------------------------------------------------------------------------------
def _read(con, sql: str, ids: list[str]) -> list[dict]:
    df = con.execute(sql, [list(ids)]).df()
    return df.to_dict("records")


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})


def _missing(x: Any) -> bool:
    if x is None or x is pd.NaT:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _ts(x: Any) -> pd.Timestamp | None:
    if _missing(x):
        return None
    t = pd.Timestamp(x)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _iso(t: pd.Timestamp | None) -> str:
    return t.isoformat() if t is not None else "?"


def _norm(x: Any) -> Any:
    """A value in a comparable canonical form (timestamps UTC, numbers float, NaN None)."""
    if _missing(x):
        return None
    if isinstance(x, pd.Timestamp) or hasattr(x, "tzinfo") and hasattr(x, "isoformat"):
        return _ts(x).value
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, float)) or hasattr(x, "item"):
        try:
            f = float(x)
            return None if math.isnan(f) else f
        except (TypeError, ValueError):
            return str(x)
    return str(x)


def _key(r: dict) -> tuple:
    return (
        str(r["event_id"]),
        int(r["interval_id"]),
        int(r["sub_interval"]),
        str(r["payload_type"]),
        str(r["site"]),
    )


def _content(r: dict) -> tuple:
    return tuple(_norm(r.get(c)) for c in CONTENT)


def _times(frame: pd.DataFrame, cols) -> pd.DataFrame:
    for c in cols:
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[ns, UTC]")
    return frame
