"""Outbox pages: queued, sent and failed mail, and each message as its recipient would see it."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import func, select

from .db import get_session
from .outbox import (
    STATUSES,
    Composed,
    OutboxMessage,
    OutboxPart,
    compose,
    is_redacted,
    requeue,
)
from .paging import Page

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


@bp.get("/")
def index():
    """All mail, newest first, filtered by status."""
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


def _message(message_id: int) -> OutboxMessage:
    return get_session().get(OutboxMessage, message_id) or abort(404)


def _composed(message: OutboxMessage) -> tuple[Composed | None, str | None]:
    try:
        return compose(message, current_app), None
    except Exception as exc:  # shown on the page: the administrator must see why
        return None, f"This message cannot be composed: {exc}"


def _html_for_viewer(message: OutboxMessage, composed: Composed) -> str:
    """The HTML body with cid: images pointing at this server, for a sandboxed frame."""
    cids = {p.cid for p in composed.inline}

    def swap(match: re.Match) -> str:
        if match.group(2) not in cids:
            return match.group(0)
        return match.group(1) + url_for(".inline", message_id=message.id, cid=match.group(2))

    return re.sub(r"""(src=["']?)cid:([^"'\s>]+)""", swap, composed.html or "")


@bp.get("/<int:message_id>")
def show(message_id: int):
    """One message: headers, the HTML as rendered, the text version, attachments."""
    message = _message(message_id)
    composed, error = _composed(message)
    attachments = [p for p in message.parts if p.kind == "attachment"]
    return render_template(
        "shell/outbox_message.html",
        message=message,
        composed=composed,
        error=error,
        attachments=attachments,
    )


@bp.get("/<int:message_id>/html")
def html(message_id: int):
    """The HTML body alone, served into the sandboxed frame of the message page."""
    message = _message(message_id)
    composed, _ = _composed(message)
    if composed is None or not composed.html:
        abort(404)
    response = Response(_html_for_viewer(message, composed), mimetype="text/html")
    # The mail is shown, never run: no scripts, no forms, images only from here.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
        "sandbox allow-same-origin"
    )
    return response


@bp.get("/<int:message_id>/inline/<cid>")
def inline(message_id: int, cid: str):
    """An image the HTML body shows (cid:), as the message has it."""
    composed, _ = _composed(_message(message_id))
    part = next((p for p in (composed.inline if composed else []) if p.cid == cid), None)
    if part is None or not part.content_type.startswith("image/"):
        abort(404)
    response = Response(part.data, mimetype=part.content_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/<int:message_id>/part/<int:part_id>")
def part(message_id: int, part_id: int):
    """An attachment, downloaded."""
    p = get_session().get(OutboxPart, part_id)
    if p is None or p.message_id != message_id:
        abort(404)
    response = Response(p.data, mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{_safe_name(p.filename)}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "part"


@bp.post("/<int:message_id>/resend")
def resend(message_id: int):
    """Queue a message again with fresh attempts."""
    s = get_session()
    message = _message(message_id)
    if is_redacted(message):
        flash(
            "This e-mail was sent and its secrets (such as a deployment link) were removed "
            "from the outbox; it cannot be sent again. Deploy the user again instead.",
            "error",
        )
        return redirect(url_for(".show", message_id=message.id), 303)
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
    s.delete(_message(message_id))
    s.flush()
    refresh_failure_alarm(s)
    flash(Markup("Message {} deleted.").format(message_id), "success")
    return redirect(url_for(".index"), 303)
