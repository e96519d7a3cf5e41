"""Every setting of the server manager, read from the environment with an embedded default."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet


class ConfigError(ValueError):
    """A setting has a value the server manager cannot use."""


@dataclass(frozen=True)
class Setting:
    """One environment setting: its name, parser, default and the line the docs show."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str


def number(low: float, high: float) -> Callable[[str], float]:
    """A parser for a decimal number between `low` and `high`."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return parse


def text(raw: str) -> str:
    """A parser for free text (trimmed)."""
    return raw.strip()


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _mail_url(raw: str) -> str:
    raw = raw.strip()
    if raw and urlsplit(raw).scheme not in ("smtp", "smtps"):
        raise ConfigError(
            "must start with smtp:// or smtps:// (or be empty to keep mail in the outbox)"
        )
    return raw


def _blades(raw: str) -> str:
    return ",".join(part.strip() for part in raw.split(",") if part.strip()) or "*"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SM_INSTANCE_DIR",
        text,
        None,
        "Folder for the embedded database, generated keys and other local state. "
        "Default: `instance/` beside the code (Flask's instance folder).",
    ),
    Setting(
        "DATABASE_URL",
        text,
        None,
        "SQLAlchemy URL of the database. Default: SQLite file `server-manager.db` in the "
        "instance folder. PostgreSQL: `postgresql+psycopg://user:pass@host:5432/dbname`.",
    ),
    Setting(
        "SECRET_KEY",
        text,
        None,
        "Key that signs session cookies and CSRF tokens. Default: generated once and kept in "
        "`instance/secret_key` (mode 0600). Every node of a cluster needs the same value.",
    ),
    Setting(
        "SM_SECRET_KEYS",
        text,
        None,
        "Comma-separated Fernet keys that encrypt secrets at rest, newest first. Default: "
        "generated once and kept in `instance/secret_keys` (mode 0600). Rotate with "
        "`server-manager rotate-keys`.",
    ),
    Setting(
        "SERVER_FQDN",
        text,
        None,
        "Fully qualified name of this server, shown in the header and used in links. "
        "Default: the machine's FQDN.",
    ),
    Setting(
        "MAIL_URL",
        _mail_url,
        "",
        "Where e-mail goes. Empty (default): kept in the Outbox page only. "
        "`smtp://user:password@host:587?starttls=1` or `smtps://user:password@host:465`.",
    ),
    Setting(
        "MAIL_FROM",
        text,
        "",
        "Sender address of every e-mail. Default: `Server Manager <noreply@SERVER_FQDN>`.",
    ),
    Setting("MAIL_TIMEOUT", _int(1, 600), 30, "Seconds to wait for the mail server."),
    Setting(
        "MAIL_MAX_ATTEMPTS",
        _int(1, 50),
        5,
        "Delivery attempts before a message is marked failed and an alarm is raised.",
    ),
    Setting(
        "MAIL_RETRY_SECONDS",
        _int(0, 86400),
        60,
        "Wait before the first retry; each later retry waits twice as long.",
    ),
    Setting(
        "MAIL_LEASE_SECONDS",
        _int(1, 86400),
        300,
        "How long a worker owns the messages it claimed; after that another worker may "
        "take them over (a worker that died mid-batch loses nothing).",
    ),
    Setting("MAIL_POLL_SECONDS", _int(1, 3600), 5, "How often the mail worker looks for mail."),
    Setting("MAIL_BATCH_SIZE", _int(1, 10000), 50, "Messages a worker claims at once."),
    Setting(
        "OUTBOX_RETENTION_DAYS",
        _int(1, 3650),
        30,
        "Sent messages older than this are deleted by the scheduled checks.",
    ),
    Setting(
        "TICK_SECONDS",
        _int(10, 86400),
        300,
        "How often the embedded default runs the scheduled checks.",
    ),
    Setting(
        "SM_BLADES",
        _blades,
        "*",
        "Blades to load: `*` (default) for every installed one, or a comma-separated list of "
        "entry-point names such as `client_deployment`.",
    ),
    Setting(
        "SESSION_IDLE_MINUTES",
        _int(1, 1440),
        30,
        "An administrator session unused for this long ends.",
    ),
    Setting("LOGIN_MAX_FAILURES", _int(1, 100), 5, "Failed logins in a row that lock an account."),
    Setting("LOGIN_LOCK_MINUTES", _int(1, 1440), 15, "How long a locked account stays locked."),
    Setting("HOST", text, "127.0.0.1", "Address `server-manager run` listens on."),
    Setting("PORT", _int(1, 65535), 5000, "Port `server-manager run` listens on."),
    Setting("WEB_WORKERS", _int(1, 64), 2, "gunicorn worker processes for `server-manager run`."),
    Setting(
        "TRUSTED_PROXIES",
        _int(0, 10),
        0,
        "Reverse proxies in front of the server whose X-Forwarded-* headers are trusted.",
    ),
    Setting("MAX_UPLOAD_MB", _int(1, 2048), 50, "Largest request body (uploads) in megabytes."),
    Setting("LOG_LEVEL", text, "INFO", "Python logging level."),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """Read a generated secret from `path`, creating it with mode 0600 on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(make() + "\n")
    return path.read_text().strip()


def _fernet_keys(raw: str) -> list[str]:
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    if not keys:
        raise ConfigError("SM_SECRET_KEYS holds no key")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "SM_SECRET_KEYS must hold Fernet keys (32 url-safe base64-encoded bytes); "
                "generate one with `server-manager rotate-keys --print-new-key`"
            ) from None
    return keys


def read(settings: tuple[Setting, ...], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Each setting from `overrides`, else the environment, else its default."""
    values: dict[str, Any] = {}
    for setting in settings:
        if setting.name in overrides:
            values[setting.name] = overrides[setting.name]
            continue
        raw = os.environ.get(setting.name)
        if raw is None or raw == "":
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ConfigError as exc:
            raise ConfigError(f"{setting.name} {exc}") from None
    return values


def load(overrides: Mapping[str, Any] | None = None, *, default_instance: Path) -> dict[str, Any]:
    """Return the shell's settings: overrides first, then the environment, then defaults."""
    overrides = dict(overrides or {})
    values = read(SETTINGS, overrides)
    for name in values:
        overrides.pop(name, None)

    instance = Path(values["SM_INSTANCE_DIR"] or default_instance).resolve()
    values["SM_INSTANCE_DIR"] = str(instance)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance / 'server-manager.db'}"
    if not values["SECRET_KEY"]:
        values["SECRET_KEY"] = _read_or_create(
            instance / "secret_key", lambda: secrets.token_urlsafe(48)
        )
    if not values["SM_SECRET_KEYS"]:
        values["SM_SECRET_KEYS"] = _read_or_create(
            instance / "secret_keys", lambda: Fernet.generate_key().decode()
        )
    if isinstance(values["SM_SECRET_KEYS"], str):
        values["SM_SECRET_KEYS"] = _fernet_keys(values["SM_SECRET_KEYS"])
    if not values["SERVER_FQDN"]:
        values["SERVER_FQDN"] = socket.getfqdn() or "localhost"
    if not values["MAIL_FROM"]:
        values["MAIL_FROM"] = f"Server Manager <noreply@{values['SERVER_FQDN']}>"
    values.update(overrides)  # Flask settings and test switches pass straight through
    return values
