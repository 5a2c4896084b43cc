"""warehouse.grid_events.store_events: idempotent, newer versions supersede, late older versions
are ignored, deletions cancel, and nothing stored is ever lost (the raw table only grows)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from sources.openadr import parse_events, site_targets
from warehouse import Warehouse
from warehouse.grid_events import store_events

SITES = ["oakland", "hamburg"]
SOT = site_targets({"oakland": "oakland", "hamburg": "hamburg"})
AS_OF = pd.Timestamp("2026-03-02T10:00Z")


def event(mod: str = "2026-03-02T09:00:00Z", values=(50, 40), id_: str = "ev-1", **kw) -> dict:
    ev = {
        "id": id_,
        "objectType": "EVENT",
        "programID": "p1",
        "modificationDateTime": mod,
        "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "MW"}],
        "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT1H"},
        "intervals": [
            {"id": k, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [v]}]}
            for k, v in enumerate(values)
        ],
    }
    ev.update(kw)
    return ev


def parsed(items, via="poll", as_of=AS_OF, received=None):
    return parse_events(
        items,
        received_at=received or pd.Timestamp("2026-03-02T10:01Z"),
        as_of=as_of,
        site_of_target=SOT,
        all_sites=SITES,
        via=via,
    )


def delete(ev: dict) -> dict:
    return {"objectType": "EVENT", "operation": "DELETE", "object": ev}


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "gf.duckdb")


def rows(wh: Warehouse) -> pd.DataFrame:
    return wh.query(
        "select event_id, site, interval_id, value, cancelled, cancel_reason, superseded_at, "
        'modified_at, received_at, as_of, start, "end", unit from staging.grid_events '
        "order by event_id, site, interval_id"
    )


def count(wh: Warehouse, table: str) -> int:
    return int(wh.query(f"select count(*) n from {table}").n[0])


def snapshot(wh: Warehouse) -> dict:
    return {
        t: wh.query(f"select * from {t} order by all").to_csv()
        for t in (
            "raw.openadr_events",
            "staging.grid_events",
            "staging.grid_event_state",
            "staging.grid_event_problems",
        )
    }


def test_the_same_payload_twice_changes_nothing(wh):
    first = store_events(wh, parsed([event()]))
    assert (first.new, first.rows_inserted, first.raw_new) == (1, 4, 1)
    before = snapshot(wh)
    later = pd.Timestamp("2026-03-02T11:01Z")  # the next hour's poll: same version
    again = store_events(wh, parsed([event()], as_of=AS_OF + pd.Timedelta(hours=1), received=later))
    assert (again.new, again.modified, again.unchanged, again.raw_new, again.rows_updated) == (
        0,
        0,
        1,
        0,
        0,
    )
    assert snapshot(wh) == before  # not even received_at / as_of move


def test_planner_query_shape(wh):
    store_events(wh, parsed([event()]))
    got = wh.query(
        'select site, payload_type, start, "end", value, unit, event_id, modified_at, as_of '
        "from staging.grid_events where not cancelled and site = 'oakland' order by start"
    )
    assert got.value.tolist() == [50.0, 40.0] and set(got.unit) == {"MW"}
    assert got["end"].tolist() == [
        pd.Timestamp("2026-03-02T13:00Z"),
        pd.Timestamp("2026-03-02T14:00Z"),
    ]


def test_a_newer_version_supersedes_and_keeps_what_it_dropped(wh):
    store_events(wh, parsed([event()]))
    newer = event("2026-03-02T09:30:00Z", values=(45,))
    st = store_events(wh, parsed([newer]))
    assert st.modified == 1 and st.new == 0
    got = rows(wh)
    live = got[~got.cancelled]
    assert live.interval_id.tolist() == [0, 0] and live.value.tolist() == [45.0, 45.0]
    assert (live.modified_at == pd.Timestamp("2026-03-02T09:30Z")).all()
    dropped = got[got.cancelled]
    assert dropped.interval_id.tolist() == [1, 1] and dropped.value.tolist() == [40.0, 40.0]
    assert set(dropped.cancel_reason) == {"superseded"}
    assert (dropped.superseded_at == pd.Timestamp("2026-03-02T09:30Z")).all()
    assert count(wh, "staging.grid_events") == 4  # nothing deleted


def test_an_older_version_arriving_late_is_ignored_and_counted(wh):
    store_events(wh, parsed([event("2026-03-02T09:30:00Z", values=(45, 35))]))
    before = rows(wh)
    st = store_events(wh, parsed([event("2026-03-02T09:00:00Z")], via="push"))
    assert (st.stale, st.modified, st.new) == (1, 0, 0)
    assert rows(wh).equals(before)
    probs = wh.query("select kind, problem from staging.grid_event_problems")
    assert probs.kind.tolist() == ["stale"]
    assert (
        "'ev-1' modified 2026-03-02T09:00:00+00:00 is older than the version applied"
        in probs.problem[0]
    )
    assert count(wh, "raw.openadr_events") == 2  # the late payload is kept as received


def test_a_deletion_cancels_every_row_and_a_later_version_is_ignored(wh):
    store_events(wh, parsed([event()]))
    st = store_events(wh, parsed([delete(event())], via="push"))
    assert st.cancelled == 1
    got = rows(wh)
    assert got.cancelled.all() and set(got.cancel_reason) == {"deleted"}
    assert count(wh, "staging.grid_events") == 4
    again = store_events(wh, parsed([delete(event())], via="push"))
    assert again.unchanged == 1 and again.cancelled == 0
    late = store_events(wh, parsed([event("2026-03-02T11:00:00Z")]))
    assert late.stale == 1 and rows(wh).cancelled.all()
    state = wh.query("select deleted, n_rows from staging.grid_event_state")
    assert state.deleted.tolist() == [True]


def test_cancellation_of_an_unknown_event_is_a_stored_problem(wh):
    st = store_events(wh, parsed([delete(event(id_="ghost"))], via="push"))
    assert st.problems == 1 and st.cancelled == 0
    (p,) = wh.query("select event_id, kind, problem from staging.grid_event_problems").to_dict(
        "records"
    )
    assert p["event_id"] == "ghost" and p["kind"] == "unknown_cancellation"
    assert (
        "cancellation (DELETE) of OpenADR event 'ghost' that gridflex never received"
        in p["problem"]
    )
    assert count(wh, "raw.openadr_events") == 1
    # the event's creation arriving after its deletion (pushes out of order) is not planned on
    late = store_events(wh, parsed([event(id_="ghost")], via="push"))
    assert late.stale == 1 and count(wh, "staging.grid_events") == 0


def test_overlapping_events_are_all_kept(wh):
    a = event(id_="ev-a", values=(50,))
    b = event(id_="ev-b", values=(30,))
    st = store_events(wh, parsed([a, b]))
    assert st.new == 2
    got = wh.query(
        "select site, min(value) tightest, count(*) n from staging.grid_events "
        "where not cancelled group by site order by site"
    )
    assert got.tightest.tolist() == [30.0, 30.0] and got.n.tolist() == [2, 2]


def test_a_malformed_newer_version_keeps_the_previous_one(wh):
    store_events(wh, parsed([event()]))
    bad = event("2026-03-02T09:30:00Z")
    bad["intervals"][0]["payloads"][0]["values"] = ["fifty"]
    st = store_events(wh, parsed([bad]))
    assert st.malformed == 1 and st.problems == 1
    assert not rows(wh).cancelled.any() and rows(wh).value.tolist() == [50.0, 40.0, 50.0, 40.0]
    assert count(wh, "raw.openadr_events") == 2


def test_nothing_is_lost_the_raw_table_only_grows(wh):
    sequence = [
        parsed([event()]),
        parsed([event()]),  # again
        parsed([event("2026-03-02T09:30:00Z", values=(45,))], via="push"),
        parsed([event("2026-03-02T09:00:00Z")], via="push"),  # late
        parsed([copy.deepcopy(event(id_="ev-2"))]),
        parsed([delete(event("2026-03-02T09:30:00Z", values=(45,)))], via="push"),
        parsed(["{not json"], via="push"),
    ]
    counts = []
    raw_before: set = set()
    for p in sequence:
        store_events(wh, p)
        raw = wh.query(
            "select event_id, modification_dt, operation, via, payload_sha256, payload from raw.openadr_events"
        )
        keys = set(map(tuple, raw.astype(str).to_numpy().tolist()))
        assert raw_before <= keys  # every stored payload is still there, unchanged
        raw_before = keys
        counts.append((count(wh, "raw.openadr_events"), count(wh, "staging.grid_events")))
    assert [c[0] for c in counts] == sorted(c[0] for c in counts)
    assert [c[1] for c in counts] == sorted(c[1] for c in counts)
    assert counts[-1] == (6, 8)


def test_one_batch_with_several_versions_applies_them_in_order(wh):
    v1, v2 = event(), event("2026-03-02T09:30:00Z", values=(45,))
    st = store_events(wh, parsed([v1, v2], via="push"))
    assert (st.new, st.modified) == (1, 1)
    live = rows(wh)[lambda d: ~d.cancelled]
    assert live.value.tolist() == [45.0, 45.0]


def test_store_writes_an_ingest_log_row(wh):
    store_events(wh, parsed([event()]), log={"source": "openadr3:http://vtn", "partition_key": "k"})
    log = wh.query("select source, target_table, inserted from raw.ingest_log")
    assert log.to_dict("records") == [
        {"source": "openadr3:http://vtn", "target_table": "staging.grid_events", "inserted": 4}
    ]
