"""The `server-manager` command and the settings: a fresh install, admins, tick, bad values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from server_manager_stub import config as config_module
from server_manager_stub.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path, empty_database_url) -> dict:
    return {
        "SM_INSTANCE_DIR": str(tmp_path / "inst"),
        "DATABASE_URL": empty_database_url,
        "SECRET_KEY": "",
        "SM_SECRET_KEYS": "",
        "LOG_LEVEL": "WARNING",
        "MAIL_URL": "",
    }


def run(env, *args, input=None):
    return CliRunner().invoke(main, list(args), env=env, input=input)


def test_init_creates_the_database_and_prints_the_primary_administrator_once(env, tmp_path):
    first = run(env, "init")
    assert first.exit_code == 0, first.output
    assert "Database created." in first.output
    password = re.search(r"password:\s+(\S+)", first.output).group(1)
    assert len(password) >= 16
    # Generated keys live in the instance folder, readable by the owner only.
    for name in ("secret_key", "secret_keys"):
        path = tmp_path / "inst" / name
        assert path.stat().st_mode & 0o777 == 0o600
    again = run(env, "init")
    assert again.exit_code == 0
    assert "administrators exist (data kept)" in again.output and password not in again.output
    # The printed credentials work.
    from helpers import login

    from server_manager_stub import create_app, db

    app = create_app({k: v for k, v in env.items() if v} | {"PASSWORD_HASHER": "argon2"})
    assert login(app.test_client(), "admin", password).status_code == 303
    db.get_db(app).engine.dispose()


def test_create_admin_and_reset_password(env):
    run(env, "init")
    made = run(env, "create-admin", "Operator")
    assert made.exit_code == 0 and "Created administrator operator." in made.output
    clash = run(env, "create-admin", "operator")
    assert clash.exit_code == 1 and "already exists" in clash.output
    short = run(env, "create-admin", "x", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    reset = run(env, "reset-password", "operator")
    assert reset.exit_code == 0 and "New password for operator" in reset.output
    missing = run(env, "reset-password", "nobody")
    assert missing.exit_code == 1 and "No administrator is named 'nobody'" in missing.output


def test_commands_refuse_an_unmigrated_database_with_what_to_run(env):
    result = run(env, "tick")
    assert result.exit_code == 1
    assert "Run `server-manager init`" in result.output


def test_tick_runs_every_check(env):
    run(env, "init")
    result = run(env, "tick")
    assert result.exit_code == 0
    assert "shell.purge_outbox: ok" in result.output


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT must be a whole number, got 'eighty'"),
        ("PORT", "70000", "PORT must be between 1 and 65535, got 70000"),
        ("MAIL_URL", "http://mail", "MAIL_URL must start with smtp:// or smtps://"),
        ("SM_SECRET_KEYS", "not-a-key", "SM_SECRET_KEYS must hold Fernet keys"),
    ],
)
def test_a_bad_setting_stops_with_a_clear_message(env, name, value, message):
    result = run({**env, name: value}, "tick")
    assert result.exit_code == 1
    assert message in result.output


def test_every_setting_is_documented(app):
    doc = (ROOT / "docs" / "configuration.md").read_text()
    blade_settings = [s for b in app.extensions["sm_blades"] for s in b.settings()]
    assert blade_settings, "the Client Deployment blade declares its settings"
    for setting in [*config_module.SETTINGS, *blade_settings]:
        assert f"`{setting.name}`" in doc, f"{setting.name} missing from docs/configuration.md"
