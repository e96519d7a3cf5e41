"""Users from their sources: import MBG records, and Sync data for imported users (R-U5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from server_manager_stub import clock
from server_manager_stub.validators import check_email

from . import mbg
from .forms.users import FIELDS_BY_NAME, check_value
from .mbg_client import MbgError
from .models import DeploymentUser, MbgConnection, with_keys

U = DeploymentUser
# MBG record field -> user column.
RECORD_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "directory_number": "directory_number",
    "email": "email",
    "sip_username": "mbg_sip_username",
    "sip_password": "mbg_sip_password",
}


@dataclass
class Outcome:
    """What a bulk action did: counts and the failures with their reasons."""

    done: int = 0
    unchanged: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)

    def fail(self, who: str, why: str) -> None:
        """Record a failure (the first thousand are kept)."""
        if len(self.failures) < 1000:
            self.failures.append((who, why))


def user_values(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """User column values from an MBG record, and warnings about what had to be left out."""
    values: dict[str, Any] = {}
    warnings = []
    for key, column in RECORD_FIELDS.items():
        value = str(record.get(key) or "").strip()
        spec = FIELDS_BY_NAME[column]
        problem = check_value(spec, value) if value else None
        if problem:
            warnings.append(f"{spec.label} '{value}' was left empty: {problem}")
            value = ""
        if column == "email" and value:
            value = check_email(value)[0] or ""
        values[column] = value or (None if spec.secret else "")
    return values, warnings


def _label(record: dict[str, Any]) -> str:
    name = " ".join(str(record.get(k) or "") for k in ("first_name", "last_name")).strip()
    return f"{name or 'record'} ({record.get('id')})"


def imported_record_ids(s: Session, connection_id: int, record_ids: list[str]) -> set[str]:
    """Which of these records of a connection are already imported."""
    if not record_ids:
        return set()
    return set(
        s.scalars(
            select(U.source_record_id).where(
                U.source_connection_id == connection_id, U.source_record_id.in_(record_ids)
            )
        )
    )


def import_records(
    s: Session,
    connection: MbgConnection,
    config: dict[str, Any],
    *,
    profile_id: int,
    record_ids: list[str] | None = None,
    excluded: list[str] = (),
) -> Outcome:
    """Import the chosen records (or all but `excluded` when record_ids is None) once each."""
    outcome = Outcome()
    wanted = set(record_ids) if record_ids is not None else None
    skip = set(excluded)
    now = clock.now()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        already = imported_record_ids(s, connection.id, [r["id"] for r in batch])
        rows = []
        for record in batch:
            if record["id"] in already:
                outcome.skipped += 1
                continue
            values, warnings = user_values(record)
            if not values["last_name"]:
                outcome.fail(_label(record), "the record has no last name")
                continue
            outcome.warnings.extend(f"{_label(record)}: {w}" for w in warnings)
            rows.append(
                with_keys(
                    {
                        **{
                            spec: ""
                            for spec in (
                                "pbx_sip_host",
                                "pbx_sip_username",
                                "mcs_host",
                                "mcs_username",
                            )
                        },
                        "pbx_sip_password": None,
                        "mcs_password": None,
                        "deployment_pin": None,
                        **values,
                        "profile_id": profile_id,
                        "source": "mbg",
                        "source_connection_id": connection.id,
                        "source_record_id": str(record["id"]),
                        "deployed_at": None,
                        "downloaded_at": None,
                        "force_config": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            )
        if rows:
            ids = s.execute(insert(U.__table__).returning(U.__table__.c.id), rows).scalars().all()
            outcome.user_ids.extend(ids)
            outcome.done += len(rows)
        batch.clear()

    for record in mbg.iter_user_records(connection, config):
        rid = str(record.get("id", ""))
        if not rid or rid in skip or (wanted is not None and rid not in wanted):
            continue
        batch.append({**record, "id": rid})
        if len(batch) >= 500:
            flush()
    flush()
    if wanted is not None:
        found = outcome.done + outcome.skipped + len(outcome.failures)
        if found < len(wanted):
            outcome.fail(
                connection.name,
                f"{len(wanted) - found} selected record(s) are no longer on the MBG",
            )
    return outcome


def sync_users(
    s: Session, users: list[DeploymentUser], config: dict[str, Any], outcome: Outcome | None = None
) -> Outcome:
    """Refresh imported users from their MBG; report records that vanished."""
    outcome = outcome or Outcome()
    by_connection: dict[int | None, list[DeploymentUser]] = {}
    for user in users:
        if user.source != "mbg":
            outcome.skipped += 1
            continue
        by_connection.setdefault(user.source_connection_id, []).append(user)
    for connection_id, group in by_connection.items():
        connection = s.get(MbgConnection, connection_id) if connection_id else None
        if connection is None:
            for user in group:
                outcome.fail(
                    _who(user),
                    "its MBG connection was deleted; there is nothing to synchronise with",
                )
            continue
        wanted = {u.source_record_id: u for u in group}
        found: dict[str, dict[str, Any]] = {}
        try:
            if len(group) <= 20:
                for rid in wanted:
                    record = mbg.fetch_user_record(connection, rid, config)
                    if record is not None:
                        found[rid] = record
            else:
                for record in mbg.iter_user_records(connection, config):
                    if str(record.get("id")) in wanted:
                        found[str(record["id"])] = record
        except MbgError as exc:
            for user in group:
                outcome.fail(_who(user), str(exc))
            continue
        now = clock.now()
        for rid, user in wanted.items():
            record = found.get(rid)
            if record is None:
                outcome.fail(
                    _who(user),
                    f"the record {rid} is no longer on the MBG "
                    f"{connection.name!r} (deleted there?)",
                )
                continue
            values, warnings = user_values(record)
            outcome.warnings.extend(f"{_who(user)}: {w}" for w in warnings)
            changed = {k: v for k, v in values.items() if getattr(user, k) != v}
            if not changed:
                outcome.unchanged += 1
                continue
            s.execute(
                update(U).where(U.id == user.id).values(**with_keys(dict(changed)), updated_at=now)
            )
            outcome.done += 1
    return outcome


def _who(user: DeploymentUser) -> str:
    return f"{user.first_name} {user.last_name}".strip() + f" (#{user.id})"
