"""Alarms: raise_alarm / clear_alarm for blades, the event viewer pages and e-mail alerts."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from . import clock, options
from .db import Base, get_session, insert_ignoring_conflict
from .paging import Page

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "major", "minor", "warning", "cleared")
RANK = {"critical": 4, "major": 3, "minor": 2, "warning": 1, "cleared": 0}
_SEVERITY_CHECK = "severity IN ('critical', 'major', 'minor', 'warning', 'cleared')"


class Alarm(Base):
    """One alarm, identified by its key; raising the key again updates this row."""

    __tablename__ = "shell_alarm"
    __table_args__ = (
        CheckConstraint(_SEVERITY_CHECK, name="severity"),
        Index("ix_shell_alarm_last_raised_at", "last_raised_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    severity: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)
    first_raised_at: Mapped[datetime]
    last_raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))

    history: Mapped[list[AlarmEvent]] = relationship(
        back_populates="alarm",
        order_by="AlarmEvent.at.desc(), AlarmEvent.id.desc()",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def active(self) -> bool:
        """True while the alarm is not cleared."""
        return self.severity != "cleared"


class AlarmEvent(Base):
    """A change of an alarm: raised, severity changed, or cleared (the history)."""

    __tablename__ = "shell_alarm_event"
    __table_args__ = (CheckConstraint(_SEVERITY_CHECK, name="severity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(
        ForeignKey("shell_alarm.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)

    alarm: Mapped[Alarm] = relationship(back_populates="history")


ALERT_RECIPIENT = "events.alert_recipient"
ALERT_MIN_SEVERITY = "events.alert_min_severity"


def raise_alarm(
    key: str,
    severity: str,
    source: str,
    message: str,
    *,
    session: Session | None = None,
    now: datetime | None = None,
) -> Alarm:
    """Raise (or update) the alarm `key`; one row per key, history kept on every change."""
    if severity not in RANK or severity == "cleared":
        raise ValueError(f"unknown alarm severity {severity!r}")
    s = session or get_session()
    now = now or clock.now()
    alarm = s.scalars(select(Alarm).where(Alarm.key == key)).one_or_none()
    if alarm is None:
        inserted = insert_ignoring_conflict(
            s,
            Alarm.__table__,
            dict(
                key=key,
                severity=severity,
                source=source,
                message=message,
                first_raised_at=now,
                last_raised_at=now,
            ),
            ["key"],
        )
        alarm = s.scalars(select(Alarm).where(Alarm.key == key)).one()
        if inserted:
            s.add(AlarmEvent(alarm=alarm, at=now, severity=severity, message=message))
            _maybe_alert(s, alarm, previous="cleared")
            log.warning("alarm %s raised (%s): %s", key, severity, message)
            return alarm
    previous = alarm.severity
    alarm.last_raised_at = now
    alarm.source = source
    if previous == severity and alarm.message == message:
        return alarm
    if previous == "cleared":
        alarm.first_raised_at = now
    alarm.severity = severity
    alarm.message = message
    alarm.cleared_at = None
    if RANK[severity] > RANK[previous]:
        alarm.acknowledged_at = None  # a worse state needs a fresh look
        alarm.acknowledged_by = None
    s.add(AlarmEvent(alarm=alarm, at=now, severity=severity, message=message))
    _maybe_alert(s, alarm, previous=previous)
    log.warning("alarm %s now %s (was %s): %s", key, severity, previous, message)
    return alarm


def clear_alarm(
    key: str,
    message: str | None = None,
    *,
    session: Session | None = None,
    now: datetime | None = None,
) -> bool:
    """Clear the alarm `key` if it is active; its row and history stay. True if it was active."""
    s = session or get_session()
    alarm = s.scalars(select(Alarm).where(Alarm.key == key)).one_or_none()
    if alarm is None or alarm.severity == "cleared":
        return False
    now = now or clock.now()
    alarm.severity = "cleared"
    alarm.cleared_at = now
    alarm.last_raised_at = now
    if message:
        alarm.message = message
    s.add(AlarmEvent(alarm=alarm, at=now, severity="cleared", message=message or alarm.message))
    log.info("alarm %s cleared", key)
    return True


def active_alarm_keys(prefix: str, *, session: Session | None = None) -> list[str]:
    """Keys of the active alarms whose key starts with `prefix`."""
    s = session or get_session()
    return list(
        s.scalars(
            select(Alarm.key).where(
                Alarm.key.startswith(prefix, autoescape=True), Alarm.severity != "cleared"
            )
        )
    )


def _maybe_alert(s: Session, alarm: Alarm, previous: str) -> None:
    """Queue an alert e-mail when an alarm reaches the configured minimum severity anew."""
    recipient = options.get(s, ALERT_RECIPIENT)
    minimum = options.get(s, ALERT_MIN_SEVERITY) or "major"
    if (
        not recipient
        or RANK[alarm.severity] < RANK[minimum]
        or RANK[previous] >= RANK[alarm.severity]
    ):
        return
    from . import outbox

    outbox.enqueue(
        s,
        to=[recipient],
        source="events",
        subject=f"[{alarm.severity.upper()}] {alarm.source}: {alarm.message[:120]}",
        text=(
            f"Severity: {alarm.severity}\nSource: {alarm.source}\nAlarm: {alarm.key}\n"
            f"Raised: {alarm.last_raised_at:%Y-%m-%d %H:%M:%S} UTC\n\n{alarm.message}\n\n"
            "Open the Event Viewer of the server manager for details and history.\n"
        ),
    )


# --- pages -------------------------------------------------------------------------------

bp = Blueprint("events", __name__, url_prefix="/events")

FILTERS = ("active", "all", *SEVERITIES)


@bp.get("/")
def index():
    """The event viewer: newest first, filtered by severity and source, paged."""
    s = get_session()
    severity = request.args.get("severity", "active")
    if severity not in FILTERS:
        severity = "active"
    source = request.args.get("source", "")
    q = select(Alarm)
    if severity == "active":
        q = q.where(Alarm.severity != "cleared")
    elif severity != "all":
        q = q.where(Alarm.severity == severity)
    if source:
        q = q.where(Alarm.source == source)
    page = Page.of(s, q.order_by(Alarm.last_raised_at.desc(), Alarm.id.desc()), request.args)
    sources = s.scalars(select(Alarm.source).distinct().order_by(Alarm.source)).all()
    counts = dict(s.execute(select(Alarm.severity, func.count()).group_by(Alarm.severity)).all())
    return render_template(
        "shell/events.html",
        page=page,
        severity=severity,
        source=source,
        sources=sources,
        filters=FILTERS,
        counts=counts,
    )


@bp.get("/<int:alarm_id>")
def detail(alarm_id: int):
    """One alarm with its history."""
    alarm = get_session().get(Alarm, alarm_id) or abort(404)
    return render_template("shell/event_detail.html", alarm=alarm)


@bp.post("/<int:alarm_id>/acknowledge")
def acknowledge(alarm_id: int):
    """Mark an alarm as seen by the logged-in administrator."""
    alarm = get_session().get(Alarm, alarm_id) or abort(404)
    if alarm.acknowledged_at is None:
        alarm.acknowledged_at = clock.now()
        alarm.acknowledged_by = current_user.username
        flash(f"Alarm acknowledged: {alarm.message[:80]}", "success")
    return redirect(request.form.get("next") or url_for(".index"), 303)


@bp.route("/alerts", methods=["GET", "POST"])
def alert_settings():
    """E-mail alerts: the recipient and the minimum severity that sends one."""
    from .forms import AlertSettingsForm

    s = get_session()
    form = AlertSettingsForm(
        data={
            "recipient": options.get(s, ALERT_RECIPIENT) or "",
            "min_severity": options.get(s, ALERT_MIN_SEVERITY) or "major",
        }
        if request.method == "GET"
        else None
    )
    if form.validate_on_submit():
        options.put(s, ALERT_RECIPIENT, form.recipient.data or None)
        options.put(s, ALERT_MIN_SEVERITY, form.min_severity.data)
        if form.recipient.data:
            flash(
                f"Alarms of severity {form.min_severity.data} and worse will be e-mailed to "
                f"{form.recipient.data}.",
                "success",
            )
        else:
            flash("E-mail alerts are off.", "success")
        return redirect(url_for(".alert_settings"), 303)
    return render_template("shell/alert_settings.html", form=form), 422 if form.errors else 200
