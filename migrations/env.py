"""Alembic environment: runs with the app's DATABASE_URL and the metadata of shell and blades."""

from alembic import context
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from server_manager_stub.db import Base

config = context.config
app = config.attributes["app"]
url = app.config["DATABASE_URL"]
is_sqlite = url.startswith("sqlite")


def _render_item(type_, obj, autogen_context):
    """Write our column types as the plain types they store, so revisions stay independent."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_migrations() -> None:
    """Migrate on a connection of its own (not the app's pool)."""
    engine = create_engine(url, poolclass=NullPool)
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            # A batch table rebuild with foreign keys ON cascades deletes into child tables
            # (FACTS.md): keep them off while migrating.
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
