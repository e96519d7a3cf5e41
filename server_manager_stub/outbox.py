"""The durable mail outbox: enqueue in the caller's transaction, a worker that delivers it."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import re
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from . import clock
from .db import Base, get_db
from .secrets import EncryptedBytes, EncryptedText

log = logging.getLogger(__name__)

STATUSES = ("queued", "sending", "sent", "kept", "failed")
FAILED_ALARM = "shell.outbox.failed"


class OutboxMessage(Base):
    """One e-mail waiting for, or done with, delivery. Bodies are encrypted: they carry links."""

    __tablename__ = "shell_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'kept', 'failed')", name="status"),
        Index("ix_shell_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_shell_outbox_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    # Empty until rendered when a renderer makes the message (the worker does it, late).
    text_body: Mapped[str | None] = mapped_column(EncryptedText)
    html_body: Mapped[str | None] = mapped_column(EncryptedText)
    renderer: Mapped[str | None] = mapped_column(String(64))
    render_args: Mapped[str | None] = mapped_column(EncryptedText)  # JSON
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]

    parts: Mapped[list[OutboxPart]] = relationship(
        back_populates="message",
        order_by="OutboxPart.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def recipient_list(self) -> list[str]:
        """The recipients as a list."""
        return [r for r in self.recipients.split("\n") if r]


class OutboxPart(Base):
    """An inline image (referenced from the HTML as cid:) or an attachment of a message."""

    __tablename__ = "shell_outbox_part"
    __table_args__ = (CheckConstraint("kind IN ('inline', 'attachment')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("shell_outbox.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    cid: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(EncryptedBytes)

    message: Mapped[OutboxMessage] = relationship(back_populates="parts")


@dataclass
class Rendered:
    """What a renderer makes of its arguments."""

    subject: str
    text: str
    html: str | None = None
    inline: list[Part] = field(default_factory=list)


Renderer = Callable[[dict[str, Any], Flask], Rendered]
_renderers: dict[str, Renderer] = {}
_secret_args: dict[str, tuple[str, ...]] = {}
REMOVED = "[removed after sending]"


def register_renderer(name: str, renderer: Renderer, secret_args: tuple[str, ...] = ()) -> None:
    """Let a blade render its messages in the worker (expensive parts such as QR codes).

    `secret_args` (a link token, say) are dropped from the stored arguments once the mail
    server has the message: the outbox keeps no usable secret of sent mail."""
    _renderers[name] = renderer
    _secret_args[name] = tuple(secret_args)


def redacted_args(message: OutboxMessage) -> str | None:
    """The stored arguments without their secrets (None when there is nothing to remove)."""
    secret = _secret_args.get(message.renderer or "")
    if not secret or not message.render_args:
        return None
    args = json.loads(message.render_args)
    args.update({key: REMOVED for key in secret if key in args})
    args["_redacted"] = True
    return json.dumps(args)


def is_redacted(message: OutboxMessage) -> bool:
    """True for a sent message whose secrets were removed (it cannot be sent again)."""
    return bool(message.render_args) and '"_redacted": true' in message.render_args


@dataclass
class Composed:
    """A message ready to show or send: stored content, or what its renderer makes."""

    subject: str
    text: str
    html: str | None
    inline: list[Part]
    attachments: list[Part]


def compose(message: OutboxMessage, app: Flask) -> Composed:
    """The message as its recipient gets it. A rendered message is made again from its
    arguments every time (QR codes and all): nothing rendered is stored, nothing goes stale."""
    stored = [Part(p.filename, p.content_type, p.data, p.cid) for p in message.parts]
    attachments = [
        p for p, row in zip(stored, message.parts, strict=True) if row.kind == "attachment"
    ]
    inline = [p for p, row in zip(stored, message.parts, strict=True) if row.kind == "inline"]
    if message.renderer is None:
        return Composed(
            message.subject, message.text_body or "", message.html_body, inline, attachments
        )
    renderer = _renderers.get(message.renderer)
    if renderer is None:
        raise ValueError(f"no renderer named {message.renderer!r} is installed")
    rendered = renderer(json.loads(message.render_args or "{}"), app)
    return Composed(
        rendered.subject, rendered.text, rendered.html, inline + rendered.inline, attachments
    )


def enqueue_rendered_later(
    s: Session,
    rows: list[dict[str, Any]],
    *,
    renderer: str,
    source: str,
    now: datetime | None = None,
) -> int:
    """Queue many messages at once, each rendered by the worker from its own arguments.

    Each row: {"to": [...], "subject": str (shown until rendered), "args": dict}. One
    executemany for all of them: deploying thousands of users writes thousands of rows.
    """
    now = now or clock.now()
    values = [
        {
            "created_at": now,
            "source": source,
            "recipients": "\n".join(r["to"]),
            "subject": r["subject"],
            "text_body": None,
            "html_body": None,
            "renderer": renderer,
            "render_args": json.dumps(r["args"]),
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "claimed_by": None,
            "last_error": None,
            "sent_at": None,
        }
        for r in rows
    ]
    if values:
        s.execute(insert(OutboxMessage.__table__), values)
    return len(values)


@dataclass
class Part:
    """What a caller hands to enqueue: an inline image (with cid) or an attachment."""

    filename: str
    content_type: str
    data: bytes
    cid: str | None = None


def enqueue(
    s: Session,
    *,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    inline: list[Part] | tuple = (),
    attachments: list[Part] | tuple = (),
    source: str = "shell",
    now: datetime | None = None,
) -> OutboxMessage:
    """Write a message to the outbox in the caller's transaction; the worker sends it later."""
    if not to:
        raise ValueError("a message needs at least one recipient")
    now = now or clock.now()
    message = OutboxMessage(
        created_at=now,
        source=source,
        recipients="\n".join(to),
        subject=subject,
        text_body=text,
        html_body=html,
        status="queued",
        attempts=0,
        next_attempt_at=now,
    )
    for p in inline:
        if not p.cid:
            raise ValueError("an inline part needs a cid")
        message.parts.append(
            OutboxPart(
                kind="inline",
                cid=p.cid,
                filename=p.filename,
                content_type=p.content_type,
                data=p.data,
            )
        )
    for p in attachments:
        message.parts.append(
            OutboxPart(
                kind="attachment", filename=p.filename, content_type=p.content_type, data=p.data
            )
        )
    s.add(message)
    return message


@dataclass
class Envelope:
    """A message ready for the wire: who sends, who receives, and the bytes (CRLF lines)."""

    mail_from: str
    recipients: list[str]
    data: bytes


def build_email(message: OutboxMessage, composed: Composed, sender: str) -> Envelope:
    """The MIME message: text, HTML with its inline images, attachments.

    The shape is always the same (mixed, alternative, related; every body in base64), so it
    is written directly: the email package's generator cost more than the SMTP exchange for
    thousands of deployment e-mails (bench/mail_worker.py). The tests read every message back
    with the email package."""
    body = _leaf("text/plain; charset=utf-8", composed.text.encode())
    if composed.html:
        html = _leaf("text/html; charset=utf-8", composed.html.encode())
        if composed.inline:
            html = _multipart("related", [html, *(_part(p, "inline") for p in composed.inline)])
        body = _multipart("alternative", [body, html])
    if composed.attachments:
        body = _multipart("mixed", [body, *(_part(p, "attachment") for p in composed.attachments)])
    headers = [
        ("From", formataddr(parseaddr(sender))),  # a non-ASCII name is encoded, not the address
        ("To", ", ".join(message.recipient_list)),
        ("Subject", _header(composed.subject)),
        ("Date", formatdate(message.created_at.timestamp(), usegmt=True)),
        (
            "Message-ID",
            make_msgid(
                idstring=f"outbox{message.id}",
                domain=parseaddr(sender)[1].rpartition("@")[2] or None,
            ),
        ),
        ("MIME-Version", "1.0"),
    ]
    head = b"".join(f"{name}: {value}\r\n".encode("ascii") for name, value in headers)
    return Envelope(parseaddr(sender)[1], message.recipient_list, head + body)


def _header(value: str) -> str:
    """A header value in ASCII (RFC 2047 encoded words when it is not), on one line."""
    value = " ".join(value.split())
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


def _leaf(content_type: str, data: bytes, extra: str = "") -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n{extra}\r\n".encode(
            "ascii"
        )
        + encoded
    )


def _part(part: Part, disposition: str) -> bytes:
    name = _filename(part.filename)
    extra = f'Content-Disposition: {disposition}; filename="{name}"\r\n'
    if disposition == "inline" and part.cid:
        extra += f"Content-ID: <{part.cid}>\r\n"
    return _leaf(
        part.content_type if "/" in part.content_type else "application/octet-stream",
        part.data,
        extra,
    )


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or "part"


def _multipart(kind: str, parts: list[bytes]) -> bytes:
    boundary = f"=_{uuid.uuid4().hex}"
    out = [f'Content-Type: multipart/{kind}; boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode("ascii"))
        out.append(part if part.endswith(b"\r\n") else part + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


class MailServer:
    """One SMTP connection described by MAIL_URL, opened on first use."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
        cafile = query.get("cafile", [None])[0]
        self.context = ssl.create_default_context(cafile=cafile)
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def send(self, email: Envelope) -> None:
        """Send one message, connecting (and logging in) when needed."""
        if self._smtp is None:
            if self.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    smtp.starttls(context=self.context)
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        try:
            self._smtp.sendmail(email.mail_from, email.recipients, email.data)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        """Say goodbye to the server, ignoring a connection that is already gone."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


@dataclass
class BatchResult:
    """What one pass of the worker did."""

    sent: int = 0
    kept: int = 0
    retried: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)

    @property
    def handled(self) -> int:
        """Messages this pass took."""
        return self.sent + self.kept + self.retried + self.failed


def _claimable(now: datetime) -> Any:
    return or_(
        and_(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


def claim(s: Session, *, worker: str, now: datetime, batch: int, lease_seconds: int) -> list[int]:
    """Take up to `batch` due messages for `worker`; safe with many workers on many machines."""
    q = (
        select(OutboxMessage.id)
        .where(_claimable(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(batch)
    )
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    candidates = s.scalars(q).all()
    if not candidates:
        return []
    # The condition is repeated so that a row another worker took in between is skipped.
    taken = (
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(candidates), _claimable(now))
            .values(
                status="sending",
                claimed_by=worker,
                attempts=OutboxMessage.attempts + 1,
                lease_until=now + timedelta(seconds=lease_seconds),
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    return sorted(taken)


def deliver_batch(
    app: Flask,
    *,
    worker: str | None = None,
    now: datetime | None = None,
    stop: threading.Event | None = None,
) -> BatchResult:
    """Claim one batch of due messages and deliver each in its own transaction.

    When `stop` is set mid-batch, the messages not yet tried go back to the queue at once.
    """
    cfg = app.config
    database = get_db(app)
    worker = worker or f"worker-{uuid.uuid4().hex[:8]}"
    result = BatchResult()
    with app.app_context():
        now = now or clock.now()
        with database.transaction() as s:
            ids = claim(
                s,
                worker=worker,
                now=now,
                batch=cfg["MAIL_BATCH_SIZE"],
                lease_seconds=cfg["MAIL_LEASE_SECONDS"],
            )
        if not ids:
            return result
        server = MailServer(cfg["MAIL_URL"], cfg["MAIL_TIMEOUT"]) if cfg["MAIL_URL"] else None
        sender = _Sender(server) if server is not None else None
        try:
            # One session for the batch (messages and parts loaded in two queries); a message
            # is committed as sent as soon as the mail server took it.
            with database.sessionmaker() as s:
                messages = s.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == worker)
                    .options(selectinload(OutboxMessage.parts))
                    .order_by(OutboxMessage.id)
                ).all()
                s.commit()
                batch = _Batch(app, s, worker, messages, sender, result)
                for position, message in enumerate(messages):
                    if stop is not None and stop.is_set():
                        _release(app, [m.id for m in messages[position:]], worker)
                        break
                    batch.deliver(message)
                batch.drain()
        finally:
            if sender is not None:
                sender.finish()
            if server is not None:
                server.close()
        if result.failed:
            with database.transaction() as s:
                refresh_failure_alarm(s)
    return result


def _renew(s: Session, worker: str, ids: list[int], cfg: Any) -> set[int]:
    """Extend the lease of the messages this worker still owns; return their ids."""
    until = clock.now() + timedelta(seconds=cfg["MAIL_LEASE_SECONDS"])
    return set(
        s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.claimed_by == worker,
                OutboxMessage.status == "sending",
            )
            .values(lease_until=until)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )


def _release(app: Flask, ids: list[int], worker: str) -> None:
    """Give claimed but untried messages back to the queue (a clean shutdown)."""
    with get_db(app).transaction() as s:
        s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.status == "sending",
                OutboxMessage.claimed_by == worker,
            )
            .values(
                status="queued",
                lease_until=None,
                claimed_by=None,
                attempts=OutboxMessage.attempts - 1,
            )
        )


def _deliver_one(
    app: Flask, s: Session, message: OutboxMessage, sender: _Sender | None, result: BatchResult
) -> None:
    """Compose a message and hand it to the sender (or keep it when there is no mail server)."""
    cfg = app.config
    if message.status != "sending":
        return
    result.ids.append(message.id)
    try:
        composed = compose(message, app)
        email = build_email(message, composed, cfg["MAIL_FROM"])
    except Exception as exc:  # a renderer bug must not stop the other messages
        log.exception("outbox message %s could not be composed", message.id)
        _failed_attempt(message, f"The message could not be composed: {exc}", cfg, result)
        return
    if sender is None:
        message.subject = composed.subject  # what the list shows: the subject as sent
        message.status = "kept"
        message.lease_until = None
        result.kept += 1
        return
    sender.put(message.id, composed.subject, email)


class _Batch:
    """One claimed batch on its way out: keeps the claim alive while it lasts, and records
    each message's outcome as soon as it is known."""

    def __init__(
        self,
        app: Flask,
        s: Session,
        worker: str,
        messages: list[OutboxMessage],
        sender: _Sender | None,
        result: BatchResult,
    ) -> None:
        self.app, self.cfg, self.s, self.worker = app, app.config, s, worker
        self.sender, self.result = sender, result
        self.by_id = {m.id: m for m in messages}
        self.open = set(self.by_id)  # claimed by us and not answered yet
        self.renewed = time.monotonic()

    def deliver(self, message: OutboxMessage) -> None:
        """Compose one message and send it (or keep it when there is no mail server)."""
        self.keep_claim()
        if message.id not in self.open:
            return  # another worker took it over after our claim lapsed
        while self.sender is not None and self.sender.inbox.full():
            self.keep_claim()
            self.record(wait=True)  # the pipeline is full: note what the server answered
        _deliver_one(self.app, self.s, message, self.sender, self.result)
        if self.sender is None or message.status != "sending":
            self.open.discard(message.id)  # kept, or it failed before it could be sent
            self.s.commit()
        self.record()

    def drain(self) -> None:
        """Wait for the messages still in the sender's hands."""
        while self.sender is not None and self.open & self.sender.handed:
            self.keep_claim()
            self.record(wait=True)

    def keep_claim(self) -> None:
        """A long batch (a slow mail server) renews its lease, and gives up what another
        worker took over after a lapse, so that nothing goes out twice."""
        if time.monotonic() - self.renewed < self.cfg["MAIL_LEASE_SECONDS"] / 3:
            return
        owned = _renew(self.s, self.worker, sorted(self.open), self.cfg)
        self.s.commit()
        self.renewed = time.monotonic()
        self.open &= owned
        if self.sender is not None:
            self.sender.owned = set(self.open)

    def record(self, wait: bool = False) -> None:
        """Write down what the server answered; commit if anything changed."""
        if self.sender is not None and self.sender.apply_results(
            self.s, self.by_id, self.cfg, self.result, self.worker, self.open, wait=wait
        ):
            self.s.commit()


class _Sender:
    """Sends composed messages over SMTP in a thread of its own, so that the next messages
    are composed (QR codes) while the mail server answers. At most PIPELINE messages wait;
    a worker killed mid-batch may therefore send that many again after its lease runs out."""

    PIPELINE = 4
    LOST = object()  # the claim on this message lapsed: another worker sends it

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.inbox: queue.Queue = queue.Queue(maxsize=self.PIPELINE)
        self.outcomes: queue.Queue = queue.Queue()
        self.handed: set[int] = set()
        self.owned: set[int] | None = None  # None: every message handed over
        self.thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self.thread.start()
        self.finished = False

    def _run(self) -> None:
        while (item := self.inbox.get()) is not None:
            message_id, subject, email = item
            if self.owned is not None and message_id not in self.owned:
                self.outcomes.put((message_id, subject, self.LOST))
                continue
            try:
                self.server.send(email)
                self.outcomes.put((message_id, subject, None))
            except Exception as exc:  # every failure is the message's, never the thread's end
                self.outcomes.put((message_id, subject, exc))

    def put(self, message_id: int, subject: str, email: Envelope) -> None:
        """Queue one message (waits while the pipeline is full)."""
        self.handed.add(message_id)
        self.inbox.put((message_id, subject, email))

    def finish(self) -> None:
        """Let the queued messages go out and stop the thread."""
        if not self.finished:
            self.finished = True
            self.inbox.put(None)
            self.thread.join()

    def apply_results(
        self,
        s: Session,
        messages: dict[int, OutboxMessage],
        cfg: Any,
        result: BatchResult,
        worker: str,
        open_ids: set[int],
        *,
        wait: bool = False,
    ) -> bool:
        """Record what the server answered; True if anything changed. With `wait`, wait (up to
        a second) for the first answer."""
        sent = []
        changed = False
        while True:
            try:
                if wait and not changed:
                    if not self.thread.is_alive():
                        raise RuntimeError("the outbox sender thread stopped")
                    message_id, subject, exc = self.outcomes.get(timeout=1.0)
                else:
                    message_id, subject, exc = self.outcomes.get_nowait()
            except queue.Empty:
                break
            changed = True
            open_ids.discard(message_id)
            self.handed.discard(message_id)
            if exc is self.LOST:
                continue
            if exc is not None:
                messages[message_id].subject = subject
                _failed_attempt(messages[message_id], _describe(exc), cfg, result)
            else:
                message = messages[message_id]
                args = redacted_args(message)
                sent.append(
                    {
                        "b_id": message_id,
                        "b_subject": subject,
                        "b_args": message.render_args if args is None else args,
                    }
                )
        if sent:
            # One statement for all of them, not a unit of work per message.
            now = clock.now()
            for row in sent:
                row["b_now"] = now
            table = OutboxMessage.__table__
            s.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"), table.c.claimed_by == worker)
                .values(
                    status="sent",
                    subject=bindparam("b_subject"),
                    sent_at=bindparam("b_now"),
                    render_args=bindparam("b_args"),
                    lease_until=None,
                    last_error=None,
                ),
                sent,
            )
            result.sent += len(sent)
        return changed


def _failed_attempt(message: OutboxMessage, error: str, cfg: Any, result: BatchResult) -> None:
    """Retry later with back-off, or mark failed after the last attempt."""
    message.last_error = error
    message.lease_until = None
    if message.attempts >= cfg["MAIL_MAX_ATTEMPTS"]:
        message.status = "failed"
        result.failed += 1
        log.error("outbox message %s failed for good: %s", message.id, error)
    else:
        message.status = "queued"
        delay = cfg["MAIL_RETRY_SECONDS"] * 2 ** (message.attempts - 1)
        message.next_attempt_at = clock.now() + timedelta(seconds=delay)
        result.retried += 1
        log.warning(
            "outbox message %s not delivered (attempt %s): %s", message.id, message.attempts, error
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(
            f"{addr} ({code} {msg.decode(errors='replace')})"
            for addr, (code, msg) in exc.recipients.items()
        )
        return f"The mail server refused the recipient(s): {refused}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "The mail server refused the user name or password in MAIL_URL."
    if isinstance(exc, smtplib.SMTPResponseException):
        return (
            f"The mail server answered {exc.smtp_code}: {exc.smtp_error.decode(errors='replace')}"
        )
    if isinstance(exc, ConnectionRefusedError):
        return "The mail server refused the connection (is MAIL_URL's host and port right?)."
    if isinstance(exc, TimeoutError):
        return "The mail server did not answer in time."
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the mail server failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"


def refresh_failure_alarm(s: Session) -> None:
    """Raise the outbox alarm while failed messages exist; clear it when none are left."""
    from .events import clear_alarm, raise_alarm

    failed = s.scalar(select(func.count()).where(OutboxMessage.status == "failed")) or 0
    if not failed:
        clear_alarm(FAILED_ALARM, "No undelivered e-mail is left in the outbox.", session=s)
        return
    last = s.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    ).one()
    raise_alarm(
        FAILED_ALARM,
        "major",
        "Mail outbox",
        f"{failed} e-mail(s) could not be delivered after every retry. Last: to "
        f"{', '.join(last.recipient_list)}: {last.last_error} Check MAIL_URL and the mail "
        "server, then use Retry failed on the Outbox page.",
        session=s,
    )


def purge_sent(s: Session, now: datetime, retention_days: int) -> int:
    """Delete delivered or kept messages older than the retention period."""
    cutoff = now - timedelta(days=retention_days)
    result = s.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(("sent", "kept")), OutboxMessage.created_at < cutoff
        )
    )
    return result.rowcount


def requeue(s: Session, message_ids: list[int] | None = None) -> int:
    """Put failed (or the given) messages back in the queue with fresh attempts."""
    q = update(OutboxMessage).values(
        status="queued",
        attempts=0,
        next_attempt_at=clock.now(),
        last_error=None,
        lease_until=None,
        claimed_by=None,
    )
    if message_ids is None:
        q = q.where(OutboxMessage.status == "failed")
    else:
        q = q.where(OutboxMessage.id.in_(message_ids), OutboxMessage.status != "sending")
    count = s.execute(q).rowcount
    refresh_failure_alarm(s)
    return count


def run_worker(app: Flask, stop: threading.Event, *, tick: bool = False) -> None:
    """Deliver mail until `stop` is set; optionally run the scheduled checks too."""
    from .scheduler import run_checks

    worker = f"worker-{uuid.uuid4().hex[:8]}"
    poll = app.config["MAIL_POLL_SECONDS"]
    next_tick = 0.0
    log.info(
        "mail worker %s started (%s)",
        worker,
        "sending via MAIL_URL" if app.config["MAIL_URL"] else "outbox only",
    )
    while not stop.is_set():
        try:
            if tick and clock.system_now().timestamp() >= next_tick:
                run_checks(app)
                next_tick = clock.system_now().timestamp() + app.config["TICK_SECONDS"]
            result = deliver_batch(app, worker=worker, stop=stop)
        except Exception:
            log.exception("mail worker pass failed; trying again shortly")
            result = BatchResult()
        if not result.handled:
            stop.wait(poll)
