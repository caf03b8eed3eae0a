"""Engine and sessions; `init_db()` migrates the configured database to the newest schema (Alembic)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import get_settings

ROOT = Path(__file__).resolve().parent.parent

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _prepare_sqlite_file(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def build_engine(url_text: str, pool_size: int = 10) -> Engine:
    url = make_url(url_text)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front (BEGIN IMMEDIATE) so two writers queue on busy_timeout
            # instead of deadlocking when a deferred reader tries to upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN")

        return engine
    # prepare_threshold=None: no server-side prepared statements, so PgBouncer transaction pooling works.
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"prepare_threshold": None},
        # JSON columns and results (a loan's stored projection state and installments, read by every write)
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )
    _ping_connections_left_idle(engine)
    return engine


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# A pooled connection is pinged before use only when it sat idle this long: a server restart, failover or
# PgBouncer timeout shows up on idle connections, while one that was used a moment ago is alive. (Pinging on
# every checkout, pool_pre_ping, cost a round trip per transaction, about a tenth of a payment.) A connection
# that dies in between fails its request with 503 (app/api/errors.py) and the pool drops every connection
# older than the failure, as with pre-ping.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_connections_left_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # the pool discards this connection and checks out another (SQLAlchemy "Disconnect Handling")
            raise DisconnectionError("pooled connection lost while idle") from exc


class Database:
    """One database: an engine plus session factories for readers and writers."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.engine = build_engine(url, pool_size)
        self.dialect = self.engine.dialect.name
        self._writer = sessionmaker(self.engine.execution_options(writer=True), expire_on_commit=False)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        # One statement needs no transaction around it: on PostgreSQL it runs in autocommit, without the
        # BEGIN and ROLLBACK round trips (SQLite's are in-process calls, and its BEGIN is ours: _on_begin).
        single = self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.is_postgres else self.engine
        self._single_statement = sessionmaker(single, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self, *, writer: bool = True) -> Session:
        return (self._writer if writer else self._reader)()

    def single_statement_read(self) -> Session:
        """A session for a read of ONE statement (e.g. the bearer token's user). Several statements in it would
        each see their own snapshot: a read of several uses `session(writer=False)`."""
        return self._single_statement()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A writer session inside one transaction: committed on success, rolled back on any error."""
        with self.session(writer=True) as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@dataclass(frozen=True)
class InitResult:
    """What init_db did: the schema revision before (None: a new, empty database) and after."""

    url: str
    before: str | None
    after: str | None

    @property
    def created(self) -> bool:
        return self.before is None

    @property
    def migrated(self) -> bool:
        return self.before != self.after


def schema_revision(url: str) -> str | None:
    """The Alembic revision a database is at, or None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    engine = build_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            revision: str | None = MigrationContext.configure(conn).get_current_revision()
            return revision
    finally:
        engine.dispose()


def init_db(url: str | None = None) -> InitResult:
    """Migrate to head and seed reference data. Safe to run any number of times."""
    from alembic import command

    url = url or get_settings().database_url
    if make_url(url).get_backend_name() == "sqlite":
        _prepare_sqlite_file(make_url(url))
    before = schema_revision(url)
    command.upgrade(alembic_config(url), "head")
    db = Database(url, pool_size=1)
    try:
        with db.transaction() as session:
            _seed_business_date(session)
    finally:
        db.dispose()
    return InitResult(make_url(url).render_as_string(hide_password=True), before, schema_revision(url))


def _seed_business_date(session: Session) -> None:
    # CONTRACT: the business date starts at the UTC date on which init-db first ran.
    today = datetime.now(UTC).date()
    exists = session.execute(text("SELECT 1 FROM business_calendar WHERE id = 1")).first()
    if not exists:
        session.execute(text("INSERT INTO business_calendar (id, business_date) VALUES (1, :d)"), {"d": today})
