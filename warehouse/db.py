"""The one module that owns DuckDB connections.

DuckDB allows one read-write process per file, and while a process holds a read-write connection no
other process may open the file at all (not even read-only). gridflex therefore never keeps a connection
open: every use is a short ``with wh.writer() as con`` / ``with wh.reader() as con`` block guarded by an
advisory file lock beside the database (``<db>.lock``): exclusive for the single writer, shared for
readers. Dagster's multiprocess executor, backfills, the CLI and a user's DuckDB shell between runs all
serialise on that lock instead of failing with "Could not set lock on file".

Writes go through :meth:`Warehouse.replace_window`: an idempotent upsert keyed by the table's primary
key that replaces a window (a partition) in one transaction. Re-running an ingest with the same data
changes nothing — not even ``received_at`` — and a failing ingest rolls back whole.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd

#: Columns that record *when* something was received; a re-ingest that differs only there is unchanged.
VOLATILE_COLUMNS = frozenset({"received_at"})

DEFAULT_DB = Path(os.environ.get("GRIDFLEX_DB", ".gridflex/gridflex.duckdb"))


@dataclass
class Write:
    """One window replacement for :meth:`Warehouse.replace_windows` (see ``replace_window``)."""

    table: str
    frame: pd.DataFrame
    scope: dict[str, object] | None = None
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None
    ts_column: str = "ts"
    log: dict | None = None


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
    ) -> UpsertStats:
        """Make ``table`` hold exactly ``frame`` inside a window, in one transaction.

        The window is the rows matching ``scope`` (column = value, or column IN list) and, if given,
        ``window[0] <= ts_column < window[1]``. Rows of ``frame`` are upserted by the table's primary key;
        rows already stored whose content (all columns except ``received_at``) is equal are left as they
        are; rows inside the window that ``frame`` no longer has are deleted (sources revise values).
        With neither ``scope`` nor ``window`` the call is a plain upsert (nothing deleted).

        Everything happens in one transaction: on any error nothing changes and the error names the table.
        If ``log`` is given a ``raw.ingest_log`` row is written in the same transaction.
        """
        spec = Write(table, frame, scope=scope, window=window, ts_column=ts_column, log=log)
        return self.replace_windows([spec])[0]

    def replace_windows(self, writes: Sequence[Write]) -> list[UpsertStats]:
        """Several :meth:`replace_window` writes in ONE transaction: all land or none does."""
        with self.writer() as con:
            prepared = [(w, self._prepare(con, w)) for w in writes]
            con.execute("BEGIN")
            try:
                out = []
                for i, (w, (key, cols, incoming)) in enumerate(prepared):
                    name = f"incoming_df_{i}"
                    con.register(name, incoming)
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {', '.join(cols)} FROM {name}"
                    )
                    stats = self._merge(
                        con, w.table, key, cols, w.scope, w.window, w.ts_column, len(incoming)
                    )
                    if w.log is not None:
                        self._write_log(con, w.table, stats, w.log)
                    con.unregister(name)
                    out.append(stats)
                con.execute("COMMIT")
                return out
            except Exception as exc:
                con.execute("ROLLBACK")
                if isinstance(exc, WarehouseError):
                    raise
                tables = ", ".join(w.table for w in writes)
                raise WarehouseError(f"{tables}: write failed, nothing was changed: {exc}") from exc

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
                clauses.append(f"{alias}.{col} IN ({', '.join('?' for _ in vals)})")
                params.extend(vals)
            else:
                clauses.append(f"{alias}.{col} = ?")
                params.append(val)
        if window is not None:
            clauses.append(f"{alias}.{ts_column} >= ? AND {alias}.{ts_column} < ?")
            params.extend(
                [pd.Timestamp(window[0]).to_pydatetime(), pd.Timestamp(window[1]).to_pydatetime()]
            )
        return (" AND ".join(clauses) if clauses else "true"), params

    def _merge(self, con, table, key, cols, scope, window, ts_column, n_in) -> UpsertStats:
        on = " AND ".join(f"t.{k} = i.{k}" for k in key)
        content = [c for c in cols if c not in key and c not in VOLATILE_COLUMNS]
        differs = " OR ".join(f"t.{c} IS DISTINCT FROM i.{c}" for c in content) or "false"
        if scope or window is not None:
            where, params = self._where(scope, window, ts_column, "i")
            outside = con.execute(
                f"SELECT count(*) FROM incoming i WHERE NOT ({where})", params
            ).fetchone()[0]
            if outside:
                raise WarehouseError(
                    f"{table}: {outside} incoming rows fall outside the window being replaced "
                    f"(scope={scope}, window={window})"
                )
        updated = con.execute(
            f"SELECT count(*) FROM {table} t JOIN incoming i ON {on} WHERE {differs}"
        ).fetchone()[0]
        unchanged = con.execute(
            f"SELECT count(*) FROM {table} t JOIN incoming i ON {on} WHERE NOT ({differs})"
        ).fetchone()[0]
        deleted = 0
        if scope or window is not None:
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
            con.execute(f"DELETE FROM {table} t USING incoming i WHERE {on} AND ({differs})")
        collist = ", ".join(cols)
        cur = con.execute(
            f"INSERT INTO {table} ({collist}) SELECT {', '.join('i.' + c for c in cols)} FROM incoming i "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
        )
        written = cur.fetchone()[0] if cur.description else 0
        inserted = int(written) - int(updated)
        return UpsertStats(table, n_in, inserted, int(updated), int(deleted), int(unchanged))

    @staticmethod
    def _write_log(con, table: str, stats: UpsertStats, log: dict) -> None:
        repairs = log.get("repairs") or {}
        con.execute(
            """INSERT INTO raw.ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())""",
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
            ],
        )
