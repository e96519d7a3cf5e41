"""Scheduled checks: `tick` runs every blade's checks once, safely on any number of nodes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import String, Text, or_, update
from sqlalchemy.orm import Mapped, mapped_column

from . import clock
from .blades import ScheduledCheck
from .db import Base, get_db, insert_ignoring_conflict

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)


class CheckRun(Base):
    """When a scheduled check last ran, and the lease that keeps two nodes from running it."""

    __tablename__ = "shell_check_run"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    running_until: Mapped[datetime | None]
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


def all_checks(app: Flask) -> list[ScheduledCheck]:
    """The shell's checks followed by every loaded blade's."""
    checks = list(app.extensions["sm_shell_checks"])
    for blade in app.extensions["sm_blades"]:
        checks.extend(
            ScheduledCheck(f"{blade.name}.{c.name}", c.fn, c.every_seconds)
            for c in blade.scheduled_checks()
        )
    return checks


def _claim(app: Flask, check: ScheduledCheck, now: datetime) -> bool:
    with get_db(app).transaction() as s:
        insert_ignoring_conflict(s, CheckRun.__table__, {"name": check.name}, ["name"])
        conditions = [
            CheckRun.name == check.name,
            or_(CheckRun.running_until.is_(None), CheckRun.running_until < now),
        ]
        if check.every_seconds:
            conditions.append(
                or_(
                    CheckRun.last_started_at.is_(None),
                    CheckRun.last_started_at <= now - timedelta(seconds=check.every_seconds),
                )
            )
        result = s.execute(
            update(CheckRun)
            .where(*conditions)
            .values(running_until=now + LEASE, last_started_at=now)
        )
        return result.rowcount == 1


def run_checks(app: Flask, now: datetime | None = None) -> dict[str, str]:
    """Run each due check once in its own transaction; return name -> 'ok' / 'skipped' / error."""
    outcome: dict[str, str] = {}
    with app.app_context():
        now = now or clock.now()
        for check in all_checks(app):
            if not _claim(app, check, now):
                outcome[check.name] = "skipped"
                continue
            error = None
            try:
                with get_db(app).transaction() as s:
                    check.fn(s, now, app)
            except Exception as exc:
                log.exception("scheduled check %s failed", check.name)
                error = f"{type(exc).__name__}: {exc}"
            with get_db(app).transaction() as s:
                s.execute(
                    update(CheckRun)
                    .where(CheckRun.name == check.name)
                    .values(running_until=None, last_finished_at=clock.now(), last_error=error)
                )
            outcome[check.name] = error or "ok"
    return outcome
