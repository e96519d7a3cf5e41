"""Outbox pages: queued, sent and failed mail, and each message as its recipient would see it."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import func, select

from .db import get_session
from .outbox import STATUSES, OutboxMessage, OutboxPart, requeue
from .paging import Page

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


@bp.get("/")
def index():
    """All mail, newest first, filtered by status."""
    from flask import current_app

    s = get_session()
    status = request.args.get("status", "")
    q = select(OutboxMessage)
    if status in STATUSES:
        q = q.where(OutboxMessage.status == status)
    else:
        status = ""
    page = Page.of(s, q.order_by(OutboxMessage.id.desc()), request.args)
    counts = dict(
        s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    )
    return render_template(
        "shell/outbox.html",
        page=page,
        status=status,
        statuses=STATUSES,
        counts=counts,
        mail_url_set=bool(current_app.config["MAIL_URL"]),
    )


def _html_for_viewer(message: OutboxMessage) -> str:
    """The HTML body with cid: images pointing at this server, for a sandboxed frame."""
    cids = {p.cid: p.id for p in message.parts if p.kind == "inline"}

    def swap(match: re.Match) -> str:
        part_id = cids.get(match.group(2))
        if part_id is None:
            return match.group(0)
        return match.group(1) + url_for(".part", message_id=message.id, part_id=part_id)

    return re.sub(r"""(src=["']?)cid:([^"'\s>]+)""", swap, message.html_body or "")


@bp.get("/<int:message_id>")
def show(message_id: int):
    """One message: headers, the HTML as rendered, the text version, attachments."""
    message = get_session().get(OutboxMessage, message_id) or abort(404)
    html = _html_for_viewer(message) if message.html_body else None
    return render_template("shell/outbox_message.html", message=message, html=html)


@bp.get("/<int:message_id>/html")
def html(message_id: int):
    """The HTML body alone, served into the sandboxed frame of the message page."""
    message = get_session().get(OutboxMessage, message_id) or abort(404)
    if not message.html_body:
        abort(404)
    response = Response(_html_for_viewer(message), mimetype="text/html")
    # The mail is shown, never run: no scripts, no forms, images only from here.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
    )
    return response


@bp.get("/<int:message_id>/part/<int:part_id>")
def part(message_id: int, part_id: int):
    """An inline image (shown) or an attachment (downloaded)."""
    p = get_session().get(OutboxPart, part_id)
    if p is None or p.message_id != message_id:
        abort(404)
    inline = p.kind == "inline" and p.content_type.startswith("image/")
    response = Response(p.data, mimetype=p.content_type if inline else "application/octet-stream")
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{_safe_name(p.filename)}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "part"


@bp.post("/<int:message_id>/resend")
def resend(message_id: int):
    """Queue a message again with fresh attempts."""
    s = get_session()
    message = s.get(OutboxMessage, message_id) or abort(404)
    if requeue(s, [message.id]):
        flash(f"Message {message.id} is queued again.", "success")
    else:
        flash("This message is being sent right now; try again in a moment.", "warning")
    return redirect(url_for(".show", message_id=message.id), 303)


@bp.post("/retry-failed")
def retry_failed():
    """Queue every failed message again."""
    count = requeue(get_session())
    flash(
        f"{count} failed message(s) queued again." if count else "No failed messages.",
        "success" if count else "info",
    )
    return redirect(url_for(".index"), 303)


@bp.post("/<int:message_id>/delete")
def delete(message_id: int):
    """Delete one message."""
    from .outbox import refresh_failure_alarm

    s = get_session()
    message = s.get(OutboxMessage, message_id) or abort(404)
    s.delete(message)
    s.flush()
    refresh_failure_alarm(s)
    flash(Markup("Message {} deleted.").format(message_id), "success")
    return redirect(url_for(".index"), 303)
