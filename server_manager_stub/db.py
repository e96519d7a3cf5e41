"""Database engine, declarative base, one session per request and the commit-once rule."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table of the shell and of the blades."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the engine for `url`, with SQLite's foreign keys, WAL and busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """The engine and session factory that one app uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits when the block ends well (for the CLI and workers)."""
        with self.sessionmaker() as s, s.begin():
            yield s


def get_db(app: Flask | None = None) -> Database:
    """The Database of `app` (default: the current app)."""
    return (app or current_app).extensions["sm_db"]


def get_session() -> Session:
    """The session of the current request or app context, created on first use."""
    if "sm_session" not in g:
        g.sm_session = get_db().sessionmaker()
    return g.sm_session


class _SessionProxy:
    """`db.session`: the request's session, reachable without passing it around."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_session(), name)


session: Session = _SessionProxy()  # type: ignore[assignment]


def keep_changes_on_refusal() -> None:
    """Commit this request's changes even though it answers 4xx (a counted failed attempt)."""
    g.sm_commit_on_4xx = True


def _commit_if_ok(response: Any) -> Any:
    """Commit once when the request ends well; a 4xx/5xx answer rolls everything back."""
    s = g.pop("sm_session", None)
    if s is None:
        return response
    keep = g.pop("sm_commit_on_4xx", False) and response.status_code < 500
    try:
        if response.status_code < 400 or keep:
            s.commit()
        else:
            s.rollback()
    finally:
        s.close()
    return response


def _close(_exc: BaseException | None) -> None:
    s = g.pop("sm_session", None)
    if s is not None:
        s.close()  # rolls back anything uncommitted; loaded objects stay readable


def init_app(app: Flask) -> Database:
    """Attach an engine for app.config['DATABASE_URL'] and the per-request session."""
    database = Database(make_engine(app.config["DATABASE_URL"]))
    app.extensions["sm_db"] = database
    app.after_request(_commit_if_ok)
    app.teardown_appcontext(_close)
    return database


def insert_ignoring_conflict(s: Session, table: Any, values: dict, index: list[str]) -> bool:
    """INSERT a row unless one with the same unique `index` columns exists; True if inserted."""
    dialect = s.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values).on_conflict_do_nothing(index_elements=index)
    # RETURNING, not rowcount: psycopg reports -1 for this statement through Core.
    stmt = stmt.returning(*(table.c[name] for name in index))
    return s.execute(stmt).first() is not None
