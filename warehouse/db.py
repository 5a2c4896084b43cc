"""The one module that owns DuckDB connections.

DuckDB allows one read-write process per file, and while a process holds a read-write connection no
other process may open the file at all (not even read-only). gridflex therefore never keeps a connection
open: every use is a short ``with wh.writer() as con`` / ``with wh.reader() as con`` block guarded by an
advisory file lock beside the database (``<db>.lock``): exclusive for the single writer, shared for
readers. Dagster's multiprocess executor, backfills, the CLI and a user's DuckDB shell between runs all
serialise on that lock instead of failing with "Could not set lock on file".

Two kinds of write, both idempotent, both one transaction (several writes can share one, so a file or
an API answer lands whole or not at all):

- :meth:`Warehouse.upsert` — for data received from a source (``staging.*``): rows are inserted or, where
  their content differs from what is stored, updated. **Nothing is ever deleted**: a source that omits an
  hour (a gap in a file, a ``null`` in an answer, an API lagging behind) means "not known (yet)", never
  "gone". A revision moves ``received_at`` forward and never back.
- :meth:`Warehouse.replace_window` — for what gridflex derives itself (a plan, a forecast issue): the rows
  of a window are made to equal the frame, deleting those the frame no longer has. On ``staging`` and
  ``raw`` tables this needs ``allow_delete=True``: deleting received data is an explicit request whose
  count is reported (``gridflex import … --delete-missing``).

Re-running a write with the same data changes nothing — not even ``received_at`` or ``created_at``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd

#: Columns that record *when* something was received or made; a re-write that differs only there is
#: unchanged (so re-running an ingest or a plan for the same inputs changes nothing).
VOLATILE_COLUMNS = frozenset({"received_at", "created_at", "restated_at"})
#: Schemas holding data received from outside: a window replacement there must be asked for explicitly.
PROTECTED_SCHEMAS = frozenset({"staging", "raw"})

T = TypeVar("T")

DEFAULT_DB = Path(os.environ.get("GRIDFLEX_DB", ".gridflex/gridflex.duckdb"))


@dataclass
class Write:
    """One write for :meth:`Warehouse.replace_windows`.

    ``mode="replace"`` (the default, for derived tables): the rows matching ``scope`` and ``window`` are
    made to equal ``frame`` (see :meth:`Warehouse.replace_window`). ``mode="upsert"`` (received data):
    insert or update by primary key, never delete; ``scope``/``window`` only bound which rows may come in.
    ``mode="delete"``: delete the rows matching ``scope`` and ``window`` (``frame`` is ignored; e.g.
    the later plans a restatement removes). ``allow_delete`` must be set to replace or delete a window
    of a ``staging``/``raw`` table.
    """

    table: str
    frame: pd.DataFrame
    scope: dict[str, object] | None = None
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None
    ts_column: str = "ts"
    log: dict | None = None
    mode: str = "replace"
    allow_delete: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("replace", "upsert", "delete"):
            raise ValueError(
                f"Write.mode must be 'replace', 'upsert' or 'delete', got {self.mode!r}"
            )
        if self.mode == "delete" and not (self.scope or self.window is not None):
            raise ValueError(f"{self.table}: a delete needs a scope or a window")
        deletes = self.mode != "upsert" and (self.scope or self.window is not None)
        if deletes and self.table.split(".")[0] in PROTECTED_SCHEMAS and not self.allow_delete:
            raise WarehouseError(
                f"{self.table}: refusing to replace a window of received data (rows the frame lacks "
                "would be deleted); upsert it, or pass allow_delete=True for an explicit deletion"
            )


class WarehouseError(RuntimeError):
    """A write that was refused; nothing was written."""


@dataclass(frozen=True)
class UpsertStats:
    """What one :meth:`Warehouse.replace_window` did."""

    table: str
    rows_in: int
    inserted: int
    updated: int
    deleted: int
    unchanged: int

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_dict(self) -> dict:
        return asdict(self)


def _q(name: str) -> str:
    """A column name as a quoted SQL identifier (``"end"`` is a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def _sql_files() -> list[tuple[str, str]]:
    folder = resources.files("warehouse") / "sql"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


class Warehouse:
    """A DuckDB warehouse file. Cheap to construct; opens connections only inside ``reader``/``writer``.

    >>> wh = Warehouse("/tmp/gf.duckdb")          # creates the schema on first write
    >>> with wh.reader() as con: con.sql("select count(*) from staging.carbon_intensity").fetchone()
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, lock_timeout_s: float = 600.0):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s
        self._migrated = False

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # -- locking and connections -------------------------------------------------------------
    @contextmanager
    def _lock(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + self.lock_timeout_s
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarehouseError(
                            f"{self.path}: waited {self.lock_timeout_s:.0f}s for the warehouse lock "
                            f"({self.lock_path}); another gridflex process is writing"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def _configure(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SET TimeZone = 'UTC'")

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The single writer: an exclusive lock, a fresh connection, the schema ensured."""
        with self._lock(exclusive=True):
            con = duckdb.connect(str(self.path))
            try:
                self._configure(con)
                if not self._migrated:
                    self._migrate(con)
                yield con
            finally:
                con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (shared lock). Creates the schema first if the file is new."""
        if not self.path.exists():
            with self.writer():
                pass
        with self._lock(exclusive=False):
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                self._configure(con)
                yield con
            finally:
                con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("BEGIN")
        try:
            for _name, sql in _sql_files():
                con.execute(sql)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._migrated = True

    def ensure_schema(self) -> None:
        with self.writer():
            pass

    # -- queries -----------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    def primary_key(self, con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        schema, name = table.split(".")
        rows = con.execute(
            """select constraint_column_names from duckdb_constraints()
               where schema_name = ? and table_name = ? and constraint_type = 'PRIMARY KEY'""",
            [schema, name],
        ).fetchall()
        if not rows:
            raise WarehouseError(f"{table}: no primary key; replace_window needs one")
        return list(rows[0][0])

    def columns(self, con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        schema, name = table.split(".")
        return [
            r[0]
            for r in con.execute(
                """select column_name from information_schema.columns
                   where table_schema = ? and table_name = ? order by ordinal_position""",
                [schema, name],
            ).fetchall()
        ]

    # -- writes ------------------------------------------------------------------------------
    def replace_window(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        scope: dict[str, object] | None = None,
        window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
        ts_column: str = "ts",
        log: dict | None = None,
        allow_delete: bool = False,
    ) -> UpsertStats:
        """Make ``table`` hold exactly ``frame`` inside a window, in one transaction.

        The window is the rows matching ``scope`` (column = value, or column IN list) and, if given,
        ``window[0] <= ts_column < window[1]``. Rows of ``frame`` are upserted by the table's primary key;
        rows already stored whose content (all columns except ``received_at``) is equal are left as they
        are; rows inside the window that ``frame`` no longer has are deleted. With neither ``scope`` nor
        ``window`` the call is a plain upsert (nothing deleted). Received data (``staging``/``raw``) is
        written with :meth:`upsert`; replacing a window there needs ``allow_delete=True``.

        Everything happens in one transaction: on any error nothing changes and the error names the table.
        If ``log`` is given a ``raw.ingest_log`` row is written in the same transaction.
        """
        spec = Write(
            table,
            frame,
            scope=scope,
            window=window,
            ts_column=ts_column,
            log=log,
            allow_delete=allow_delete,
        )
        return self.replace_windows([spec])[0]

    def upsert(self, table: str, frame: pd.DataFrame, *, log: dict | None = None) -> UpsertStats:
        """Insert ``frame``'s rows, update those whose content changed, delete nothing (one
        transaction). A changed row's ``received_at`` becomes the later of the stored and the incoming
        one; an unchanged row keeps its own."""
        return self.replace_windows([Write(table, frame, log=log, mode="upsert")])[0]

    def replace_windows(self, writes: Sequence[Write]) -> list[UpsertStats]:
        """Several writes (:class:`Write`: upserts, window replacements, deletes) in ONE transaction:
        all land or none does. One :class:`UpsertStats` per write, in order."""
        with self.writer() as con:
            return self._apply(con, writes)

    def read_then_write(
        self, build: Callable[[duckdb.DuckDBPyConnection], tuple[Sequence[Write], T]]
    ) -> tuple[list[UpsertStats], T]:
        """Read, decide and write under ONE writer lock: ``build(con)`` reads what it needs and
        returns ``(writes, extra)``; the writes are applied in one transaction as
        :meth:`replace_windows` applies them, and ``(stats, extra)`` is returned.

        For writes whose rows depend on what is stored (a newer version of an OpenADR event
        replacing the older one, a late older version being ignored): no other writer can change
        the rows between the read and the write. ``build`` must not write itself."""
        with self.writer() as con:
            writes, extra = build(con)
            return self._apply(con, writes), extra

    def _apply(self, con: duckdb.DuckDBPyConnection, writes: Sequence[Write]) -> list[UpsertStats]:
        prepared = [None if w.mode == "delete" else self._prepare(con, w) for w in writes]
        con.execute("BEGIN")
        try:
            out = []
            for i, (w, prep) in enumerate(zip(writes, prepared, strict=True)):
                if prep is None:
                    stats = self._delete(con, w)
                else:
                    key, cols, incoming = prep
                    name = f"incoming_df_{i}"
                    con.register(name, incoming)
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {', '.join(map(_q, cols))} FROM {name}"
                    )
                    stats = self._merge(con, w, key, cols, len(incoming))
                    con.unregister(name)
                if w.log is not None:
                    self._write_log(con, w.table, stats, w.log)
                out.append(stats)
            con.execute("COMMIT")
            return out
        except Exception as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, WarehouseError):
                raise
            tables = ", ".join(w.table for w in writes)
            raise WarehouseError(f"{tables}: write failed, nothing was changed: {exc}") from exc

    def _delete(self, con, w: Write) -> UpsertStats:
        where, params = self._where(w.scope, w.window, w.ts_column, "t")
        # fetchall, not fetchone: a result left unfinished blocks the next register() on the
        # connection ("connection has an unfinished result") when a write follows a delete
        n = con.execute(f"SELECT count(*) FROM {w.table} t WHERE {where}", params).fetchall()[0][0]
        if n:
            con.execute(f"DELETE FROM {w.table} t WHERE {where}", params)
        return UpsertStats(w.table, 0, 0, 0, int(n), 0)

    def _prepare(self, con, w: Write) -> tuple[list[str], list[str], pd.DataFrame]:
        cols = self.columns(con, w.table)
        if not cols:
            raise WarehouseError(f"{w.table}: no such table")
        missing = [
            c for c in cols if c not in w.frame.columns and not self._has_default(con, w.table, c)
        ]
        if missing:
            raise WarehouseError(f"{w.table}: incoming frame lacks columns {missing}")
        key = self.primary_key(con, w.table)
        use_cols = [c for c in cols if c in w.frame.columns]
        incoming = w.frame[use_cols].copy()
        dup = incoming.duplicated(subset=key, keep=False)
        if dup.any():
            first = incoming.loc[dup, key].head(3).to_dict("records")
            raise WarehouseError(
                f"{w.table}: incoming frame has {int(dup.sum())} rows sharing a key {key}, e.g. {first}"
            )
        return key, use_cols, incoming

    @staticmethod
    def _has_default(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
        schema, name = table.split(".")
        row = con.execute(
            """select column_default, is_nullable from information_schema.columns
               where table_schema = ? and table_name = ? and column_name = ?""",
            [schema, name, column],
        ).fetchone()
        return row is not None and (row[0] is not None or row[1] == "YES")

    @staticmethod
    def _where(scope: dict | None, window, ts_column: str, alias: str) -> tuple[str, list]:
        clauses, params = [], []
        for col, val in (scope or {}).items():
            if isinstance(val, (list, tuple, set, frozenset)):
                vals = list(val)
                if not vals:
                    clauses.append("false")
                    continue
                clauses.append(f"{alias}.{_q(col)} IN ({', '.join('?' for _ in vals)})")
                params.extend(vals)
            else:
                clauses.append(f"{alias}.{_q(col)} = ?")
                params.append(val)
        if window is not None:
            ts = _q(ts_column)
            clauses.append(f"{alias}.{ts} >= ? AND {alias}.{ts} < ?")
            params.extend(
                [pd.Timestamp(window[0]).to_pydatetime(), pd.Timestamp(window[1]).to_pydatetime()]
            )
        return (" AND ".join(clauses) if clauses else "true"), params

    def _merge(self, con, w: Write, key, cols, n_in) -> UpsertStats:
        table, scope, window, ts_column = w.table, w.scope, w.window, w.ts_column
        on = " AND ".join(f"t.{_q(k)} = i.{_q(k)}" for k in key)
        content = [c for c in cols if c not in key and c not in VOLATILE_COLUMNS]
        differs = " OR ".join(f"t.{_q(c)} IS DISTINCT FROM i.{_q(c)}" for c in content) or "false"
        if scope or window is not None:
            where, params = self._where(scope, window, ts_column, "i")
            outside = con.execute(
                f"SELECT count(*) FROM incoming i WHERE NOT ({where})", params
            ).fetchone()[0]
            if outside:
                raise WarehouseError(
                    f"{table}: {outside} incoming rows fall outside the window being written "
                    f"(scope={scope}, window={window})"
                )
        updated = con.execute(
            f"SELECT count(*) FROM {table} t JOIN incoming i ON {on} WHERE {differs}"
        ).fetchone()[0]
        unchanged = con.execute(
            f"SELECT count(*) FROM {table} t JOIN incoming i ON {on} WHERE NOT ({differs})"
        ).fetchone()[0]
        deleted = 0
        if w.mode == "replace" and (scope or window is not None):
            where, params = self._where(scope, window, ts_column, "t")
            deleted = con.execute(
                f"SELECT count(*) FROM {table} t WHERE {where} "
                f"AND NOT EXISTS (SELECT 1 FROM incoming i WHERE {on})",
                params,
            ).fetchone()[0]
            if deleted:
                con.execute(
                    f"DELETE FROM {table} t WHERE {where} "
                    f"AND NOT EXISTS (SELECT 1 FROM incoming i WHERE {on})",
                    params,
                )
        if updated:
            if "received_at" in cols:  # a revision never moves received_at backwards
                con.execute(
                    f"UPDATE incoming AS i SET received_at = greatest(i.received_at, t.received_at) "
                    f"FROM {table} t WHERE {on} AND ({differs})"
                )
            con.execute(f"DELETE FROM {table} t USING incoming i WHERE {on} AND ({differs})")
        collist = ", ".join(map(_q, cols))
        cur = con.execute(
            f"INSERT INTO {table} ({collist}) SELECT {', '.join('i.' + _q(c) for c in cols)} FROM incoming i "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
        )
        written = cur.fetchone()[0] if cur.description else 0
        inserted = int(written) - int(updated)
        return UpsertStats(table, n_in, inserted, int(updated), int(deleted), int(unchanged))

    @staticmethod
    def _write_log(con, table: str, stats: UpsertStats, log: dict) -> None:
        repairs = log.get("repairs") or {}
        con.execute(
            """INSERT INTO raw.ingest_log (ingest_id, source, target_table, partition_key, window_start,
                   window_end, rows_in, inserted, updated, deleted, unchanged, repairs, notes,
                   source_modified_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())""",
            [
                log.get("ingest_id") or uuid.uuid4().hex,
                log["source"],
                table,
                log.get("partition_key"),
                log.get("window_start"),
                log.get("window_end"),
                stats.rows_in,
                stats.inserted,
                stats.updated,
                stats.deleted,
                stats.unchanged,
                json.dumps(repairs),
                log.get("notes"),
                log.get("source_modified_at"),
            ],
        )
