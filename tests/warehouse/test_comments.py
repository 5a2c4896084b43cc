"""Every marts view and column says what it means, and numeric columns say their unit
(warehouse/sql/095_comments.sql). The views are read from the catalogue, so a new view without
comments fails here."""

from __future__ import annotations

import re

import pytest

from warehouse import Warehouse
from warehouse.db import _sql_files

#: (column-name pattern, the unit its comment must state in its trailing [brackets])
UNIT_RULES = [
    (r"_mwh$", "MWh"),
    (r"_mw$", "MW"),
    (r"(^|_)g_kwh$|(^|_)g_per_\w*kwh$", "g CO2/kWh"),
    (r"_t$", "t CO2"),
    (r"_pct$", "%"),
    (r"(^|_)cost(_saved)?$|_usd$", "$"),
    (r"_h$", "h"),
    (r"_s$", "s"),
]
NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|FLOAT|DOUBLE|DECIMAL)")
UNIT = re.compile(r"\[([^\[\]]+)\]\s*$")


def comment_problems(column: str, data_type: str, comment: str | None) -> list[str]:
    """What is wrong with one column's comment under 095_comments.sql's convention."""
    if not comment or not comment.strip():
        return ["no comment"]
    m = UNIT.search(comment)
    units = [u.strip() for u in m.group(1).split("|")] if m else []
    out = []
    if NUMERIC.match(data_type) and not units:
        out.append(f"numeric ({data_type}) but no [unit] at the end of its comment")
    for pattern, unit in UNIT_RULES:
        if re.search(pattern, column) and unit not in units:
            out.append(f"its name says {unit!r} but the comment states {units or 'no unit'}")
            break
    return out


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    wh = Warehouse(tmp_path_factory.mktemp("comments") / "wh.duckdb")
    wh.ensure_schema()
    views = wh.query(
        "select view_name, comment from duckdb_views() where schema_name = 'marts' order by 1"
    )
    cols = wh.query(
        """select c.table_name, c.column_name, c.data_type, c.comment
           from duckdb_columns() c join duckdb_views() v
             on v.schema_name = c.schema_name and v.view_name = c.table_name
           where c.schema_name = 'marts' order by c.table_name, c.column_index"""
    )
    return wh, views, cols


def test_comment_rules_catch_what_they_should():
    assert comment_problems("it_mw", "DOUBLE", None) == ["no comment"]
    assert comment_problems("it_mw", "DOUBLE", "IT power") != []  # numeric without a unit
    assert comment_problems("it_mw", "DOUBLE", "IT power [MWh]") != []  # the wrong unit
    assert comment_problems("emissions_t", "DOUBLE", "Emissions [t CO2]") == []
    assert comment_problems("p50", "DOUBLE", "Median [g CO2/kWh | requests/h]") == []
    assert comment_problems("site", "VARCHAR", "Fleet site") == []


def test_every_marts_view_and_column_is_commented(catalogue):
    _, views, cols = catalogue
    assert len(views) >= 4 and {"schedule_current", "decisions"} <= set(views.view_name)
    problems = [f"marts.{v}: no COMMENT ON VIEW" for v, c in views.itertuples(index=False) if not c]
    for table, column, data_type, comment in cols.itertuples(index=False):
        problems += [
            f"marts.{table}.{column}: {p}" for p in comment_problems(column, data_type, comment)
        ]
    assert not problems, (
        f"{len(problems)} marts comment problem(s); add them to warehouse/sql/095_comments.sql:\n"
        + "\n".join(problems)
    )


def test_comments_survive_the_views_being_recreated(catalogue):
    """Every writer re-creates the views (090) and so drops their comments: 095 must run after it,
    on every writer connection."""
    wh, _, _ = catalogue
    names = [n for n, _ in _sql_files()]
    assert names.index("095_comments.sql") > names.index("090_marts.sql")
    again = Warehouse(wh.path)  # a new writer: migrates again, CREATE OR REPLACE VIEW included
    again.ensure_schema()
    got = again.query(
        "select comment from duckdb_columns() where schema_name = 'marts' "
        "and table_name = 'schedule_current' and column_name = 'it_mw'"
    )
    assert got.comment[0].endswith("[MW]")
