"""Fixtures: a migrated database per test (SQLite file copy or PostgreSQL template), the app,
clients logged in as administrators, and helpers that post forms with their CSRF token."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import DATABASE_URL, ON_POSTGRES, PASSWORD, TEST_KEY, login
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from server_manager_stub import create_app, db, migrate
from server_manager_stub.auth import Admin, create_admin
from server_manager_stub.clock import FrozenClock

_counter = itertools.count()


def base_config(tmp_path: Path, database_url: str) -> dict:
    """Settings every test app shares."""
    return {
        "DATABASE_URL": database_url,
        "SM_INSTANCE_DIR": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "SM_SECRET_KEYS": [TEST_KEY],
        "SERVER_FQDN": "sm.example.test",
        "PASSWORD_HASHER": "fast",
        "LOG_LEVEL": "WARNING",
        "MAIL_URL": "",
        "TESTING": True,
    }


class PgServer:
    """Creates and drops throw-away databases on the PostgreSQL of DATABASE_URL."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def url_for(self, name: str) -> str:
        """The URL of database `name` on this server."""
        return self.url.set(database=name).render_as_string(hide_password=False)

    def create(self, name: str, template: str | None = None) -> str:
        """Create database `name` (optionally as a copy of `template`); return its URL."""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(
                text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
            )
        return self.url_for(name)

    def drop(self, name: str) -> None:
        """Drop database `name`."""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer | None]:
    """The PostgreSQL server when DATABASE_URL points at one."""
    if not ON_POSTGRES:
        yield None
        return
    server = PgServer(DATABASE_URL)
    yield server
    server.admin.dispose()


def migrated_app(config: dict) -> Flask:
    """An app whose database has just been upgraded to heads."""
    app = create_app({**config, "SM_SKIP_SCHEMA_CHECK": True})
    migrate.upgrade(app)
    db.get_db(app).engine.dispose()
    return app


@pytest.fixture(scope="session")
def template_database(tmp_path_factory, pg) -> Iterator[str]:
    """A database migrated once per run; each test gets a copy."""
    tmp = tmp_path_factory.mktemp("template")
    if pg is None:
        path = tmp / "template.db"
        migrated_app(base_config(tmp, f"sqlite:///{path}"))
        yield str(path)
        return
    name = f"sm_tpl_{os.getpid()}"
    url = pg.create(name)
    migrated_app(base_config(tmp, url))
    yield name
    pg.drop(name)


@pytest.fixture
def empty_database_url(tmp_path, pg) -> Iterator[str]:
    """A database with no tables at all."""
    if pg is None:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"sm_empty_{os.getpid()}_{next(_counter)}"
    yield pg.create(name)
    pg.drop(name)


@pytest.fixture
def database_url(tmp_path, pg, template_database) -> Iterator[str]:
    """A migrated database of this test's own."""
    if pg is None:
        path = tmp_path / "test.db"
        shutil.copyfile(template_database, path)
        yield f"sqlite:///{path}"
        return
    name = f"sm_test_{os.getpid()}_{next(_counter)}"
    yield pg.create(name, template=template_database)
    pg.drop(name)


@pytest.fixture
def clock() -> FrozenClock:
    """The app's clock; tests move it with clock.advance(...)."""
    return FrozenClock()


@pytest.fixture
def config(tmp_path, database_url, clock) -> dict:
    """The test app's settings; a test may change them before asking for `app`."""
    return {**base_config(tmp_path, database_url), "SM_CLOCK": clock}


@pytest.fixture
def app(config) -> Iterator[Flask]:
    """The server-manager app on this test's database."""
    application = create_app(config)
    yield application
    db.get_db(application).engine.dispose()


@pytest.fixture
def client(app) -> FlaskClient:
    """An anonymous browser."""
    return app.test_client()


@pytest.fixture
def make_admin(app):
    """Create an administrator: make_admin('bob', primary=False) -> Admin (password PASSWORD)."""

    def make(username: str, *, primary: bool = False, password: str = PASSWORD) -> Admin:
        with app.app_context(), db.get_db(app).transaction() as s:
            return create_admin(s, username, password, primary=primary)

    return make


@pytest.fixture
def admin(app, make_admin) -> FlaskClient:
    """A browser logged in as the primary administrator 'admin'."""
    make_admin("admin", primary=True)
    c = app.test_client()
    response = login(c, "admin")
    assert response.status_code == 303, response.text
    return c


@pytest.fixture
def operator(app, admin, make_admin) -> FlaskClient:
    """A browser logged in as 'operator', an administrator who is not the primary one."""
    make_admin("operator")
    c = app.test_client()
    assert login(c, "operator").status_code == 303
    return c


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on 127.0.0.1 (threaded), for clients that need sockets."""
    import threading

    from werkzeug.serving import make_server

    from server_manager_stub.peers import free_port

    port = free_port()
    app.config.update(SERVER_FQDN="127.0.0.1", DEPLOY_LINK_SCHEME="http", DEPLOY_LINK_PORT=port)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
