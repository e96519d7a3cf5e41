"""Connections to MBGs: create, authorise (request, verifier, exchange), expiry alarms, records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server_manager_stub import clock
from server_manager_stub.events import clear_alarm, raise_alarm

from .mbg_client import MbgClient, MbgError, MbgSettings, split_host
from .models import MbgConnection, Profile

CONSUMER = "Client Deployment"
ALARM_SOURCE = "Client Deployment: MBG"


class ConnectionInUse(ValueError):
    """A connection that profiles still use cannot be deleted."""


def alarm_key(connection_id: int) -> str:
    """The expiry alarm of a connection."""
    return f"client_deployment.mbg.{connection_id}.expiry"


def client_for(connection: MbgConnection, config: dict[str, Any]) -> MbgClient:
    """A client for the connection's host with the app's MBG settings."""
    return MbgClient(connection.host, MbgSettings.from_config(config))


def list_connections(s: Session) -> list[MbgConnection]:
    """Every connection in the order they were added."""
    return list(s.scalars(select(MbgConnection).order_by(MbgConnection.id)))


def choices(s: Session) -> list[tuple[int, str]]:
    """(id, label) of every connection, for a profile's MBG field."""
    return [
        (c.id, c.name if c.verified else f"{c.name} (not verified)") for c in list_connections(s)
    ]


def name_taken(s: Session, name: str, exclude_id: int | None = None) -> bool:
    """True if another connection has this name (ignoring case)."""
    q = select(MbgConnection.id).where(MbgConnection.name_key == name.strip().lower())
    if exclude_id is not None:
        q = q.where(MbgConnection.id != exclude_id)
    return s.scalar(q) is not None


def create_connection(s: Session, name: str, host: str, *, is_local: bool = False) -> MbgConnection:
    """Store a new, unverified connection."""
    connection = MbgConnection(
        name=name.strip(),
        name_key=name.strip().lower(),
        host=host.strip(),
        created_at=clock.now(),
        verified=False,
        is_local=is_local,
    )
    s.add(connection)
    s.flush()
    return connection


def request_authorization(
    connection: MbgConnection, config: dict[str, Any], callback: str | None
) -> None:
    """Ask the MBG for a request token (Save and send AuthRequest / Authenticate).

    A failure is kept on the connection (last_error) and raised; the connection stays as it was.
    """
    try:
        request = client_for(connection, config).request_authorization(CONSUMER, callback)
    except MbgError as exc:
        connection.last_error = str(exc)
        raise
    connection.token_id = request.token_id
    connection.request_secret = request.request_secret
    connection.authorize_url = request.authorize_url
    connection.last_error = None


def complete_authorization(
    s: Session, connection: MbgConnection, verifier: str, config: dict[str, Any]
) -> None:
    """Exchange the pending request and its verifier for a credential valid one year."""
    if not connection.token_id or not connection.request_secret:
        raise MbgError("There is no authorization request waiting: click Authenticate first.")
    try:
        grant = client_for(connection, config).exchange(
            connection.token_id, connection.request_secret, verifier.strip()
        )
    except MbgError as exc:
        connection.last_error = str(exc)
        raise
    now = clock.now()
    connection.access_token = grant.access_token
    connection.expires_at = grant.expires_at
    connection.verified = True
    connection.verified_at = now
    connection.request_secret = None
    connection.last_error = None
    clear_alarm(
        alarm_key(connection.id),
        f"The connection {connection.name!r} was authorized "
        f"again; it is valid until {grant.expires_at:%Y-%m-%d}.",
        session=s,
    )


def find_by_token(s: Session, token_id: str) -> MbgConnection | None:
    """The connection waiting for approval of this request token."""
    return s.scalars(select(MbgConnection).where(MbgConnection.token_id == token_id)).first()


def profiles_using(s: Session, connection: MbgConnection) -> list[str]:
    """Names of the profiles that use a connection."""
    return list(
        s.scalars(
            select(Profile.name)
            .where(Profile.mbg_connection_id == connection.id)
            .order_by(Profile.name_key)
        )
    )


def delete_connection(s: Session, connection: MbgConnection) -> None:
    """Delete a connection no profile uses; its expiry alarm is cleared."""
    users = profiles_using(s, connection)
    if users:
        raise ConnectionInUse(
            f"The connection {connection.name!r} is used by the profile(s) "
            f"{', '.join(users)}; choose another MBG in them first."
        )
    clear_alarm(
        alarm_key(connection.id), f"The connection {connection.name!r} was deleted.", session=s
    )
    s.delete(connection)


def check_expiry(s: Session, now: datetime, app: Flask) -> None:
    """Scheduled check: warning at 28 days or fewer, minor at 14, major once expired."""
    for connection in list_connections(s):
        days = connection.days_left(now)
        key = alarm_key(connection.id)
        if days is None or days > 28:
            clear_alarm(key, session=s, now=now)
            continue
        if connection.expires_at <= now:
            severity = "major"
            message = (
                f"The authorization of the MBG connection {connection.name!r} "
                f"({connection.host}) expired on {connection.expires_at:%Y-%m-%d}: users "
                "can no longer be imported or synchronised from it. Authenticate it again "
                "under Client Deployment › Configuration."
            )
        else:
            severity = "minor" if days <= 14 else "warning"
            message = (
                f"The authorization of the MBG connection {connection.name!r} "
                f"({connection.host}) expires in {days} day(s), on "
                f"{connection.expires_at:%Y-%m-%d}. Authenticate it again under Client "
                "Deployment › Configuration."
            )
        raise_alarm(key, severity, ALARM_SOURCE, message, session=s, now=now)


def ensure_local_connection(s: Session, host: str) -> MbgConnection | None:
    """Create the 'Local MBG' connection for `host` once (the guide: it exists automatically)."""
    if not host or s.scalar(select(func.count()).where(MbgConnection.is_local)):
        return None
    name = "Local MBG"
    if name_taken(s, name):
        name = f"Local MBG ({host})"[:64]
    return create_connection(s, name, host, is_local=True)


# --- user records (for the Users tab) ---------------------------------------------------------


def _usable(connection: MbgConnection) -> str:
    if not connection.is_usable(clock.now()) or not connection.access_token:
        raise MbgError(
            f"The connection {connection.name!r} is not verified or its authorization "
            "has expired: authenticate it first."
        )
    return connection.access_token


def iter_user_records(
    connection: MbgConnection, config: dict[str, Any], per_page: int = 200
) -> Iterator[dict[str, Any]]:
    """Every user record of a verified connection, page by page."""
    token = _usable(connection)
    yield from client_for(connection, config).iter_users(token, per_page)


def fetch_user_record(
    connection: MbgConnection, record_id: str, config: dict[str, Any]
) -> dict[str, Any] | None:
    """One user record by its id (None if the MBG no longer has it), for Sync data."""
    return client_for(connection, config).user(_usable(connection), record_id)


def mbg_fqdn(s: Session, profile: Profile) -> str | None:
    """What "MBG's FQDN" means for a profile: its connection's host name, without a port."""
    if profile.mbg_connection_id is None:
        return None
    connection = s.get(MbgConnection, profile.mbg_connection_id)
    if connection is None:
        return None
    return split_host(connection.host)[0]
