"""Printing query results: a table a person reads (tabulate), CSV and JSON a program reads.

A :class:`Result` holds what DuckDB returns (``fetchall()``'s Python values: lists stay lists,
TIMESTAMPTZ are aware datetimes, DECIMAL are ``Decimal``) or what a pandas frame holds; each format
turns values into text or JSON in one place:

- table: LIST/STRUCT as ``[a, b]`` / ``{'k': v}`` (DuckDB's own text form), timestamps as
  ``2024-01-22 05:00+00:00`` (seconds shown only when not zero), floats rounded per column to about
  four significant digits of the column's largest value, NULL as ``NULL``;
- csv: the same text for lists and structs, timestamps in ISO 8601 (``2024-01-22T05:00:00+00:00``),
  floats exactly as stored (shortest round-trip repr), NULL as an empty field;
- json: a list of records with native types (lists stay lists, numbers numbers, NULL, NaN and ±inf
  ``null``, timestamps ISO 8601 strings, JSON columns parsed), so ``json.loads`` gives them back.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


@dataclass
class Result:
    """One query's answer: column names, DuckDB type names (``""`` when unknown) and rows."""

    columns: list[str]
    types: list[str]
    rows: list[tuple]

    @classmethod
    def from_cursor(cls, cur) -> Result | None:
        """The result of the statement a DuckDB connection just executed (``None``: it returns no
        rows, e.g. ``SET``)."""
        if cur.description is None:
            return None
        return cls(
            [d[0] for d in cur.description],
            [str(d[1]) for d in cur.description],
            [tuple(r) for r in cur.fetchall()],
        )

    @classmethod
    def from_frame(cls, df) -> Result:
        """A pandas frame's rows as plain Python values (numpy scalars, NaN and NaT unwrapped)."""
        return cls(
            [str(c) for c in df.columns],
            ["" for _ in df.columns],
            [tuple(_unwrap(v) for v in row) for row in df.itertuples(index=False, name=None)],
        )

    def records(self) -> list[dict]:
        """Rows as JSON-ready dicts (see :func:`json_value`)."""
        return [
            {c: json_value(v, t) for c, t, v in zip(self.columns, self.types, row, strict=True)}
            for row in self.rows
        ]


def _unwrap(v):
    """numpy/pandas scalars to Python ones; NaN, NaT and NA to None; arrays to lists."""
    import numpy as np
    import pandas as pd

    if isinstance(v, np.ndarray):
        return [_unwrap(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_unwrap(x) for x in v]
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, pd.Timedelta):
        return v.to_pytimedelta()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# -- one value -----------------------------------------------------------------------------------
def _decimal(v: decimal.Decimal):
    return int(v) if v == v.to_integral_value() and v.as_tuple().exponent >= 0 else float(v)


def iso(v: dt.datetime | dt.date | dt.time, *, human: bool) -> str:
    """ISO 8601. ``human``: a space instead of ``T`` and no ``:00`` seconds, e.g.
    ``2024-01-22 05:00+00:00``."""
    if isinstance(v, dt.datetime):
        if not human:
            return v.isoformat()
        spec = "minutes" if v.second == 0 and v.microsecond == 0 else "auto"
        return v.isoformat(sep=" ", timespec=spec)
    return v.isoformat()


def json_value(v, type_name: str = ""):
    """A value as JSON: native where JSON has the type, else its ISO / text form."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int):
        return v
    if isinstance(v, decimal.Decimal):
        return _decimal(v) if v.is_finite() else None
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return iso(v, human=False)
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, (list, tuple)):
        inner = type_name[:-2] if type_name.endswith("[]") else ""
        return [json_value(x, inner) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", errors="backslashreplace")
    if isinstance(v, str) and type_name == "JSON":
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, uuid.UUID):
        return str(v)
    return v if isinstance(v, str) else str(v)


def text(v, *, human: bool = True) -> str | None:
    """A value as one cell of text (``None`` stays None: the format decides how NULL looks)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return iso(v, human=human)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_nested(x, human) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"'{k}': {_nested(x, human)}" for k, x in v.items()) + "}"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", errors="backslashreplace")
    return str(v)


def _nested(v, human: bool) -> str:
    t = text(v, human=human)
    return "NULL" if t is None else t


# -- whole results -------------------------------------------------------------------------------
def _is_numeric(type_name: str) -> bool:
    return not type_name.endswith("]") and type_name.split("(")[0] in NUMERIC_TYPES


def _decimals(values: Sequence) -> int:
    """Decimals that show about four significant digits of the column's largest value (0..6)."""
    finite = [abs(float(v)) for v in values if isinstance(v, float) and math.isfinite(v)]
    biggest = max(finite, default=0.0)
    if biggest == 0:
        return 3
    return int(min(6, max(0, 3 - math.floor(math.log10(biggest)))))


def format_table(result: Result, limit: int | None = None) -> str:
    """A GitHub-style table of the first ``limit`` rows (all when ``None``), and how many were left
    out."""
    from tabulate import tabulate

    rows = result.rows if limit is None else result.rows[:limit]
    if not rows:
        return tabulate([], headers=result.columns, tablefmt="github") + "\n(0 rows)"
    cells, numeric_cols = [], []
    for j, t in enumerate(result.types):
        col = [r[j] for r in rows]
        numbers = all(
            v is None or (isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool))
            for v in col
        )
        numeric_cols.append(
            _is_numeric(t) or (t == "" and numbers and any(c is not None for c in col))
        )
    floatfmt = []
    for j, numeric in enumerate(numeric_cols):
        col = [float(r[j]) if isinstance(r[j], decimal.Decimal) else r[j] for r in rows]
        floatfmt.append(f".{_decimals(col)}f" if numeric else "")
    for r in rows:
        cells.append(
            [
                (float(v) if isinstance(v, decimal.Decimal) else v)
                if numeric_cols[j] and v is not None
                else text(v)
                for j, v in enumerate(r)
            ]
        )
    out = tabulate(
        cells,
        headers=result.columns,
        tablefmt="github",
        floatfmt=floatfmt,
        missingval="NULL",
        disable_numparse=[j for j, n in enumerate(numeric_cols) if not n],
    )
    if limit is not None and len(result.rows) > limit:
        out += f"\n... {len(result.rows) - limit} more rows (--limit)"
    return out


def format_csv(result: Result) -> str:
    """CSV with a header row: every row, floats as stored, NULL as an empty field."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(result.columns)
    for r in result.rows:
        w.writerow(["" if v is None else text(v, human=False) for v in r])
    return buf.getvalue().rstrip("\n")


def format_json(result: Result | None) -> str:
    """A JSON list of records, one record a line (``[]`` for a statement without rows)."""
    records = [] if result is None else result.records()
    if not records:
        return "[]"
    lines = (json.dumps(r, ensure_ascii=False, allow_nan=False) for r in records)
    return "[\n" + ",\n".join(lines) + "\n]"
