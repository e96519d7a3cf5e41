"""Benchmark: the mail worker draining the outbox of 5,000 deployment e-mails, against the QR
codes alone.

Set-up (not timed): a fresh migrated SQLite database with 5,000 users of the Default profile,
each with an e-mail address, all deployed with blade.deploy.deploy_users (5,000 queued outbox
rows, each rendered by the worker), and a loopback SMTP server
(server_manager_stub.peers.smtp.SmtpSink: aiosmtpd, run in a process of its own as a mail
server is in production) as MAIL_URL. The same drain with the sink in a thread of this process
is printed for reference.

Measured: `server_manager_stub.outbox.deliver_batch(app)` called until a call handles nothing
(MAIL_BATCH_SIZE = 200). For each message the worker claims it, decrypts its arguments,
composes it (blade.mail.render: text, escaped HTML and a QR code PNG via blade.qr.qr_png),
builds the MIME message and hands it to its sender thread, which talks SMTP while the next
messages are composed; each message is committed as sent when the server took it.
Checked: 5,000 messages arrived, one per user, and every outbox row is 'sent'.

Baseline (same run): blade.qr.qr_png(link) for 5,000 links of the same form and length as the
real ones (https://<SERVER_FQDN>/client-deployment/d/<43-char token>).

Target: worker messages/s >= 0.5 x QR codes/s. For reference (not in the ratio), the raw bytes
the sink received are sent again with smtplib over one connection to a new sink, to show what
the SMTP transport and the in-process sink cost alone. With --profile (or when the target is
missed) the first 1,000 messages of another drain run under cProfile and the top 15
functions are printed.
The last line printed is `ratio: N.NN` (worker throughput / QR throughput).
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import secrets
import smtplib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    SERVER_FQDN,
    close_app,
    fresh_database,
    migrated_template,
    open_app,
    template_with_users,
)
from flask import Flask
from sqlalchemy import select

from server_manager_stub.db import get_db
from server_manager_stub.outbox import OutboxMessage, deliver_batch
from server_manager_stub.peers.smtp import Received, SmtpSink

USERS = 5_000
BATCH_SIZE = 200
TARGET = 0.5
PROFILED_CALLS = 5  # deliver_batch calls profiled: 1,000 messages


# --- set-up ---------------------------------------------------------------------------------


def deployed_app(workdir: Path, template: Path, name: str) -> tuple[Flask, Path]:
    """An app on a fresh copy of `template` whose users are all deployed (outbox filled)."""
    from blade.deploy import deploy_users
    from blade.models import DeploymentUser

    db_path = fresh_database(template, workdir / f"{name}.db")
    app = open_app(workdir, db_path, MAIL_BATCH_SIZE=BATCH_SIZE)
    with app.app_context(), get_db(app).transaction() as s:
        users = list(s.scalars(select(DeploymentUser)))
        outcome = deploy_users(s, users, app.config)
    assert outcome.done == USERS and not outcome.failures, (outcome.done, outcome.failures[:3])
    return app, db_path


def queued_links(app: Flask) -> list[str]:
    """The deployment links in the queued messages (their arguments decrypted)."""
    with app.app_context(), get_db(app).transaction() as s:
        args = s.scalars(select(OutboxMessage.render_args))
        return [json.loads(a)["link"] for a in args]


def user_emails(db_path: Path) -> list[str]:
    """Every user's address (the recipients expected)."""
    with sqlite3.connect(db_path) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM cd_user")]
    conn.close()
    return emails


# --- the worker -----------------------------------------------------------------------------


def drain(app: Flask, max_calls: int | None = None) -> tuple[float, int, int]:
    """(seconds, messages sent, deliver_batch calls) to empty the outbox (or to make
    `max_calls` calls)."""
    sent = calls = 0
    start = time.perf_counter()
    while max_calls is None or calls < max_calls:
        result = deliver_batch(app)
        calls += 1
        assert not (result.retried or result.failed or result.kept), result
        sent += result.sent
        if result.handled == 0:
            break
    return time.perf_counter() - start, sent, calls


def _sink_process(conn) -> None:  # conn: a multiprocessing Connection
    """Child process: an SmtpSink until told to stop, then what it received."""
    sink = SmtpSink().start()
    conn.send(sink.port)
    conn.recv()
    sink.stop()
    conn.send([(m.mail_from, m.rcpt_tos, m.data) for m in sink.messages])


class ProcessSink:
    """The loopback SMTP server in a process of its own, as a mail server is in production
    (in this process it would compete with the worker for the interpreter lock)."""

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_sink_process, args=(child,), daemon=True)
        self.messages: list[Received] = []

    def start(self) -> ProcessSink:
        self.process.start()
        self.port = self.conn.recv()
        self.url = f"smtp://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self.conn.send("stop")
        self.messages = [Received(*m) for m in self.conn.recv()]
        self.process.join(10)


def run_worker(
    workdir: Path,
    template: Path,
    sink_kind: str = "process",
) -> tuple[float, int, list[str], list[Received]]:
    """Deploy everyone, drain the outbox into a new sink and check what arrived.

    Returns (seconds, deliver_batch calls, the real links, what the sink received)."""
    app, db_path = deployed_app(workdir, template, f"worker-{sink_kind}")
    links = queued_links(app)
    sink = ProcessSink().start() if sink_kind == "process" else SmtpSink().start()
    try:
        app.config["MAIL_URL"] = sink.url
        elapsed, sent, calls = drain(app)
    finally:
        sink.stop()
        close_app(app)
    check_delivered(db_path, sink.messages, sent)
    db_path.unlink()
    return elapsed, calls, links, sink.messages


def profile_worker(workdir: Path, template: Path) -> None:
    """The first PROFILED_CALLS deliver_batch calls of a fresh drain under cProfile."""
    app, db_path = deployed_app(workdir, template, "profile")
    sink = SmtpSink().start()
    profiler = cProfile.Profile()
    try:
        app.config["MAIL_URL"] = sink.url
        profiler.enable()
        elapsed, sent, _ = drain(app, PROFILED_CALLS)
        profiler.disable()
    finally:
        sink.stop()
        close_app(app)
    db_path.unlink()
    print_profile(profiler, elapsed, sent)


def check_delivered(db_path: Path, received: list[Received], sent: int) -> None:
    """One message per user arrived, and every outbox row is 'sent'."""
    assert sent == USERS, sent
    assert len(received) == USERS, len(received)
    recipients = sorted(r for m in received for r in m.rcpt_tos)
    assert recipients == sorted(user_emails(db_path)), "recipients differ from the users"
    with sqlite3.connect(db_path) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM shell_outbox GROUP BY status"))
    conn.close()
    assert statuses == {"sent": USERS}, statuses
    # Every message carries its own QR code PNG (composed by the worker, not stored).
    assert all(b"Content-ID: <qrcode>" in m.data and b"image/png" in m.data for m in received)


# --- baseline and reference -----------------------------------------------------------------


def qr_only(links: list[str]) -> float:
    """Seconds for blade.qr.qr_png of every link."""
    from blade.qr import qr_png

    start = time.perf_counter()
    for link in links:
        qr_png(link)
    return time.perf_counter() - start


def similar_links(real: list[str]) -> list[str]:
    """New links of the same form (and so the same length) as the real ones."""
    links = [f"https://{SERVER_FQDN}/client-deployment/d/{secrets.token_urlsafe(32)}" for _ in real]
    assert sorted(map(len, links)) == sorted(map(len, real)), "link lengths differ"
    return links


def smtp_only(received: list[Received]) -> float:
    """Seconds to send the received bytes again over one smtplib connection to a new sink."""
    sink = SmtpSink().start()
    try:
        start = time.perf_counter()
        with smtplib.SMTP(sink.host, sink.port, timeout=30) as smtp:
            for m in received:
                smtp.sendmail(m.mail_from, m.rcpt_tos, m.data)
        elapsed = time.perf_counter() - start
        assert len(sink.messages) == len(received)
    finally:
        sink.stop()
    return elapsed


def print_profile(profiler: cProfile.Profile, elapsed: float, sent: int) -> None:
    """The top 15 by own time and by cumulative time (the worker's thread only)."""
    print(
        f"\ncProfile of the first {sent:,} messages of a drain ({elapsed:.1f} s under the "
        "profiler; main thread only: the sink's thread shows up as time waiting for replies)"
    )
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(15)
        table = out.getvalue()
        print(f"--- top 15 by {order}")
        print(table[table.index("   ncalls") :].rstrip())


def main(force_profile: bool) -> None:
    print("Mail worker benchmark: deliver_batch draining 5,000 deployment e-mails vs qr_png alone")
    print(
        f"({USERS:,} deployed users, MAIL_BATCH_SIZE {BATCH_SIZE}, loopback aiosmtpd sink in a "
        f"process of its own; one run each; target worker msg/s >= {TARGET:g} x QR codes/s)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        workdir = Path(tmp)
        template = template_with_users(workdir, migrated_template(workdir), USERS)

        worker_s, calls, links, received = run_worker(workdir, template)
        size = sum(len(m.data) for m in received) / len(received)
        print(
            f"worker: {USERS:,} messages in {worker_s:.2f} s ({calls} deliver_batch calls), "
            f"{worker_s / USERS * 1000:.2f} ms/message, {USERS / worker_s:,.0f} messages/s; "
            f"{size / 1024:.1f} KiB per message on the wire"
        )

        baseline_links = similar_links(links)
        qr_s = qr_only(baseline_links)
        print(
            f"QR only: {USERS:,} PNGs of {len(baseline_links[0])}-character links in "
            f"{qr_s:.2f} s, {qr_s / USERS * 1000:.2f} ms/code, {USERS / qr_s:,.0f} codes/s"
        )

        same_s, _, _, _ = run_worker(workdir, template, sink_kind="thread")
        print(
            f"reference, the same drain with the sink in a thread of this process (sharing the "
            f"interpreter lock with the worker): {same_s:.2f} s, "
            f"{USERS / same_s:,.0f} messages/s, {(USERS / same_s) / (USERS / qr_s):.2f} x QR"
        )

        smtp_s = smtp_only(received)
        print(
            f"reference, SMTP alone (smtplib -> in-process sink, same bytes, one connection): "
            f"{smtp_s:.2f} s, {smtp_s / USERS * 1000:.2f} ms/message, "
            f"{USERS / smtp_s:,.0f} messages/s = {smtp_s / worker_s:.0%} of the worker's time"
        )

        ratio = (USERS / worker_s) / (USERS / qr_s)
        if force_profile or ratio < TARGET:
            profile_worker(workdir, template)
    print("\nsummary")
    print(f"  worker : {USERS / worker_s:7,.0f} messages/s ({worker_s:.2f} s)")
    print(f"  QR only: {USERS / qr_s:7,.0f} codes/s ({qr_s:.2f} s)")
    print(f"  SMTP   : {USERS / smtp_s:7,.0f} messages/s ({smtp_s:.2f} s, reference)")
    print(
        f"  worker/QR throughput {ratio:.2f} "
        f"(target >= {TARGET:g}: {'met' if ratio >= TARGET else 'MISSED'})"
    )
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main(force_profile="--profile" in sys.argv[1:])
