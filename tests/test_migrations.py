"""Migrations (R-G3): empty -> heads -> check -> base -> heads, on SQLite and PostgreSQL;
the app refuses to serve a database that is not migrated, and says what to run."""

from __future__ import annotations

from helpers import ON_POSTGRES
from sqlalchemy import inspect

from server_manager_stub import create_app, db, migrate
from server_manager_stub.db import Base


def _tables(app) -> set[str]:
    with db.get_db(app).engine.connect() as conn:
        return {t for t in inspect(conn).get_table_names() if t != "alembic_version"}


def test_upgrade_check_downgrade_upgrade_round_trip(config, empty_database_url):
    app = create_app({**config, "DATABASE_URL": empty_database_url, "SM_SKIP_SCHEMA_CHECK": True})
    assert migrate.schema_problem(app) == (
        "The database is empty. Run `server-manager init` to create its tables."
    )
    migrate.upgrade(app)
    assert _tables(app) == set(Base.metadata.tables)
    migrate.check(app)  # models and migrated schema agree (raises otherwise)
    assert migrate.schema_problem(app) is None
    migrate.downgrade(app, "base")
    assert _tables(app) == set()
    migrate.upgrade(app)
    migrate.check(app)
    assert migrate.schema_problem(app) is None
    db.get_db(app).engine.dispose()


def test_there_are_two_branches_shell_and_blade_with_one_head_each(app):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(app))
    shell_head = script.get_revision("shell@head").revision
    blade_head = script.get_revision("blade@head").revision
    assert set(script.get_heads()) == {shell_head, blade_head}


def test_an_unmigrated_database_gets_a_503_that_says_what_to_run(config, empty_database_url):
    app = create_app({**config, "DATABASE_URL": empty_database_url})
    response = app.test_client().get("/login")
    assert response.status_code == 503
    assert "Run `server-manager init`" in response.text
    db.get_db(app).engine.dispose()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(app):
    if ON_POSTGRES:
        return
    with db.get_db(app).engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_upgrading_a_database_with_data_keeps_every_row(config, empty_database_url):
    """A batch table rebuild on SQLite must not cascade-delete rows (FACTS.md): profiles written
    before the MBG revision rebuilt their table are all still there after it."""
    from sqlalchemy import text

    app = create_app({**config, "DATABASE_URL": empty_database_url, "SM_SKIP_SCHEMA_CHECK": True})
    migrate.upgrade(app, "shell_0001")
    migrate.upgrade(app, "blade_0002")
    # An outbox message with a part (a child row with ON DELETE CASCADE) before shell_0002
    # rebuilds the outbox table.
    with db.get_db(app).engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO shell_outbox (id, created_at, source, recipients, subject, "
                "text_body, status, attempts, next_attempt_at) VALUES (1, CURRENT_TIMESTAMP, "
                "'t', 'a@b.c', 's', 'x', 'queued', 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO shell_outbox_part (message_id, kind, cid, filename, content_type, "
                "data) VALUES (1, 'inline', 'qr', 'qr.png', 'image/png', :d)"
            ),
            {"d": b"png"},
        )
    engine = db.get_db(app).engine
    with engine.connect() as conn:
        columns = [c["name"] for c in inspect(conn).get_columns("cd_profile")]
    copied = ", ".join(
        {"id": "2", "name": "'Second'", "name_key": "'second'", "is_default": "false"}.get(c, c)
        for c in columns
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO cd_profile ({', '.join(columns)}) "
                f"SELECT {copied} FROM cd_profile WHERE id = 1"
            )
        )
    migrate.upgrade(app)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM cd_profile ORDER BY id")).scalars().all()
    assert names == ["Default", "Second"]
    with engine.connect() as conn:
        parts = conn.execute(text("SELECT count(*) FROM shell_outbox_part")).scalar()
    assert parts == 1
    engine.dispose()
