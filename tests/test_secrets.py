"""Secrets at rest (R-G1): encrypted in the database, readable with the key, rotatable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from server_manager_stub import db, secrets
from server_manager_stub.db import Base
from server_manager_stub.outbox import OutboxMessage, Part, enqueue


def _store(app, body: str) -> int:
    with app.app_context(), db.get_db(app).transaction() as s:
        message = enqueue(
            s,
            to=["a@example.com"],
            subject="s",
            text=body,
            inline=[Part("k.bin", "application/octet-stream", b"raw secret bytes", cid="k")],
        )
        s.flush()
        return message.id


def _raw(app, message_id: int) -> tuple[str, bytes]:
    with app.app_context():
        s = db.get_session()
        body = s.execute(
            text("SELECT text_body FROM shell_outbox WHERE id = :i"), {"i": message_id}
        ).scalar()
        data = s.execute(
            text("SELECT data FROM shell_outbox_part WHERE message_id = :i"), {"i": message_id}
        ).scalar()
        return body, bytes(data)


def test_the_raw_database_value_is_not_the_plaintext(app):
    message_id = _store(app, "the auth token is 4F7-K2Q")
    body, data = _raw(app, message_id)
    assert "4F7-K2Q" not in body and b"raw secret bytes" not in data
    with app.app_context():
        message = db.get_session().get(OutboxMessage, message_id)
        assert message.text_body == "the auth token is 4F7-K2Q"
        assert message.parts[0].data == b"raw secret bytes"


def test_rotation_re_encrypts_everything_under_the_newest_key(app):
    old_key = app.config["SM_SECRET_KEYS"][0]
    message_id = _store(app, "rotate me")
    before = _raw(app, message_id)
    new_key = Fernet.generate_key().decode()
    secrets.configure([new_key, old_key])
    try:
        with app.app_context(), db.get_db(app).transaction() as s:
            assert secrets.rotate_all(s, Base.metadata) == 2
        after = _raw(app, message_id)
        assert after[0] != before[0] and after[1] != before[1]
        # The new key alone now reads everything; the old key alone no longer does.
        secrets.configure([new_key])
        with app.app_context():
            message = db.get_session().get(OutboxMessage, message_id)
            assert message.text_body == "rotate me"
            assert message.parts[0].data == b"raw secret bytes"
        secrets.configure([old_key])
        with app.app_context(), pytest.raises(secrets.SecretKeyError, match="SM_SECRET_KEYS"):
            db.get_session().scalars(select(OutboxMessage)).all()
    finally:
        secrets.configure([old_key])


def test_the_rotate_keys_command_adds_a_key_to_the_instance_key_file(app, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from server_manager_stub.cli import main

    instance = tmp_path / "instance"
    (instance / "secret_keys").parent.mkdir(parents=True, exist_ok=True)
    (instance / "secret_keys").write_text(app.config["SM_SECRET_KEYS"][0] + "\n")
    message_id = _store(app, "cli rotation")
    env = {
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SM_INSTANCE_DIR": str(instance),
        "SM_SECRET_KEYS": "",
        "SECRET_KEY": "x",
        "LOG_LEVEL": "WARNING",
    }
    result = CliRunner().invoke(main, ["rotate-keys", "--new-key"], env=env)
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 stored secret(s)" in result.output
    keys = (instance / "secret_keys").read_text().strip().split(",")
    assert len(keys) == 2 and keys[1] == app.config["SM_SECRET_KEYS"][0]
    assert (instance / "secret_keys").stat().st_mode & 0o777 == 0o600
    secrets.configure([keys[0]])
    try:
        with app.app_context():
            assert db.get_session().get(OutboxMessage, message_id).text_body == "cli rotation"
    finally:
        secrets.configure(app.config["SM_SECRET_KEYS"])
