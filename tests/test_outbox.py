"""The mail outbox (R-DEP10): enqueue in the caller's transaction, real SMTP delivery on
loopback, retries then failure with an alarm, several workers, nothing lost on a stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from helpers import ON_POSTGRES, TEST_KEY, submit
from sqlalchemy import func, select, text

from server_manager_stub import db
from server_manager_stub.events import Alarm
from server_manager_stub.outbox import (
    OutboxMessage,
    Part,
    _Sender,
    claim,
    deliver_batch,
    enqueue,
    requeue,
)
from server_manager_stub.peers.smtp import SmtpSink

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def _enqueue(app, n=1, **kwargs):
    ids = []
    with app.app_context(), db.get_db(app).transaction() as s:
        for i in range(n):
            message = enqueue(
                s,
                to=kwargs.get("to", [f"user{i}@example.com"]),
                subject=f"Message {i}",
                text=f"Hello {i}",
                html=kwargs.get("html"),
                inline=kwargs.get("inline", ()),
                attachments=kwargs.get("attachments", ()),
            )
            s.flush()
            ids.append(message.id)
    return ids


def _statuses(app):
    with app.app_context():
        rows = (
            db.get_session()
            .execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
            .all()
        )
    return dict(rows)


def test_a_message_is_delivered_to_a_real_smtp_server(app, smtp):
    app.config["MAIL_URL"] = smtp.url
    _enqueue(
        app,
        to=["alice@example.com"],
        html='<p>Scan <img src="cid:qr1"></p>',
        inline=[Part("qr.png", "image/png", PNG, cid="qr1")],
        attachments=[Part("notes.txt", "text/plain", b"attached text")],
    )
    result = deliver_batch(app)
    assert (result.sent, result.failed) == (1, 0)
    assert len(smtp.messages) == 1
    received = smtp.messages[0]
    assert received.rcpt_tos == ["alice@example.com"]
    email = received.message
    assert email["Subject"] == "Message 0"
    assert email["From"] == app.config["MAIL_FROM"]
    assert email.get_body(("plain",)).get_content().strip() == "Hello 0"
    assert "cid:qr1" in email.get_body(("html",)).get_content()
    image = next(p for p in email.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<qr1>" and image.get_content() == PNG
    attachment = next(email.iter_attachments())
    assert attachment.get_filename() == "notes.txt"
    assert _statuses(app) == {"sent": 1}


def test_enqueue_is_part_of_the_callers_transaction(app):
    with app.app_context(), pytest.raises(RuntimeError), db.get_db(app).transaction() as s:
        enqueue(s, to=["a@example.com"], subject="s", text="t")
        s.flush()
        raise RuntimeError("the caller's work failed")
    assert _statuses(app) == {}


def test_without_a_mail_server_mail_is_kept_in_the_outbox_page(app, admin):
    _enqueue(
        app,
        to=["bob@example.com"],
        html='<p>Hi <b>Bob</b> <img src="cid:qr1"></p>',
        inline=[Part("qr.png", "image/png", PNG, cid="qr1")],
    )
    result = deliver_batch(app)
    assert result.kept == 1
    listing = admin.get("/outbox/").text
    assert "No mail server is configured" in listing and "bob@example.com" in listing
    with app.app_context():
        message_id = db.get_session().scalars(select(OutboxMessage.id)).one()
    page = admin.get(f"/outbox/{message_id}").text
    assert "Hello 0" in page and f"/outbox/{message_id}/html" in page
    html = admin.get(f"/outbox/{message_id}/html")
    assert f'src="/outbox/{message_id}/inline/qr1"' in html.text  # cid: made viewable
    assert "sandbox" in html.headers["Content-Security-Policy"]
    image = admin.get(f"/outbox/{message_id}/inline/qr1")
    assert image.mimetype == "image/png" and image.data == PNG
    assert admin.get(f"/outbox/{message_id}/inline/nope").status_code == 404


def test_a_refusing_server_leads_to_retries_then_a_failed_row_and_an_alarm(app, smtp, clock, admin):
    app.config.update(MAIL_URL=smtp.url, MAIL_MAX_ATTEMPTS=3, MAIL_RETRY_SECONDS=60)
    smtp.refuse = "550 5.1.1 No such user here"
    _enqueue(app, to=["ghost@example.com"])
    assert deliver_batch(app).retried == 1
    assert deliver_batch(app).handled == 0  # waits for its back-off
    clock.advance(seconds=61)
    assert deliver_batch(app).retried == 1
    clock.advance(seconds=119)
    assert deliver_batch(app).handled == 0  # the second wait doubled
    clock.advance(seconds=2)
    assert deliver_batch(app).failed == 1
    with app.app_context():
        message = db.get_session().scalars(select(OutboxMessage)).one()
        assert (message.status, message.attempts) == ("failed", 3)
        assert "refused the recipient(s): ghost@example.com (550" in message.last_error
        alarm = db.get_session().scalars(select(Alarm)).one()
        assert (alarm.key, alarm.severity) == ("shell.outbox.failed", "major")
        assert "1 e-mail(s) could not be delivered" in alarm.message
    assert "Retry failed (1)" in admin.get("/outbox/").text
    # The administrator fixes the mail server and retries: delivered, alarm cleared.
    smtp.refuse = None
    assert submit(admin, "/outbox/retry-failed", page="/outbox/").status_code == 303
    assert deliver_batch(app).sent == 1
    assert smtp.messages[0].rcpt_tos == ["ghost@example.com"]
    with app.app_context():
        assert db.get_session().scalars(select(Alarm)).one().severity == "cleared"


def test_a_mail_server_that_is_down_counts_as_a_failed_attempt(app, clock):
    from server_manager_stub.peers import free_port

    app.config.update(MAIL_URL=f"smtp://127.0.0.1:{free_port()}", MAIL_MAX_ATTEMPTS=1)
    _enqueue(app, 2)
    assert deliver_batch(app).failed == 2
    with app.app_context():
        errors = db.get_session().scalars(select(OutboxMessage.last_error)).all()
    assert all("refused the connection" in e for e in errors)


def test_three_workers_never_claim_the_same_message(app):
    _enqueue(app, 40)
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(3)

    def work(name):
        barrier.wait()
        mine = claimed.setdefault(name, [])
        while True:
            with app.app_context(), db.get_db(app).transaction() as s:
                ids = claim(
                    s, worker=name, now=app.config["SM_CLOCK"](), batch=7, lease_seconds=300
                )
            if not ids:
                return
            mine.extend(ids)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == len(set(everything)) == 40


@pytest.mark.skipif(not ON_POSTGRES, reason="SKIP LOCKED is PostgreSQL's")
def test_postgres_claims_skip_rows_locked_by_another_worker(app):
    _enqueue(app, 10)
    with app.app_context():
        holder = db.get_db(app).sessionmaker()
        # Another worker is mid-claim and holds the first 4 rows.
        holder.execute(text("SELECT id FROM shell_outbox ORDER BY id LIMIT 4 FOR UPDATE"))
        with db.get_db(app).transaction() as s:
            ids = claim(s, worker="w2", now=app.config["SM_CLOCK"](), batch=10, lease_seconds=300)
        holder.rollback()
        holder.close()
    assert len(ids) == 6  # it did not wait for the lock, it took the others


def test_a_claim_whose_lease_ran_out_is_taken_over(app, clock):
    _enqueue(app, 1)
    with app.app_context(), db.get_db(app).transaction() as s:
        assert claim(s, worker="dead", now=clock(), batch=5, lease_seconds=60)
    assert deliver_batch(app).handled == 0
    clock.advance(seconds=61)
    assert deliver_batch(app).kept == 1


def test_resend_puts_a_message_back_in_the_queue(app, admin):
    (message_id,) = _enqueue(app)
    deliver_batch(app)
    response = submit(admin, f"/outbox/{message_id}/resend", page=f"/outbox/{message_id}")
    assert response.status_code == 303
    assert _statuses(app) == {"queued": 1}
    assert (
        submit(admin, f"/outbox/{message_id}/delete", page=f"/outbox/{message_id}").status_code
        == 303
    )
    assert _statuses(app) == {}


def test_sent_mail_older_than_the_retention_is_purged_by_tick(app, clock):
    from server_manager_stub.scheduler import run_checks

    _enqueue(app, 2)
    deliver_batch(app)
    clock.advance(days=31)
    _enqueue(app, 1)
    run_checks(app)
    assert _statuses(app) == {"queued": 1}
    with app.app_context():
        assert requeue(db.get_session()) == 0


# --- a real worker process, stopped in the middle of a batch --------------------------------


def _worker_env(app, smtp) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SM_INSTANCE_DIR": app.config["SM_INSTANCE_DIR"],
        "SECRET_KEY": "test-secret-key",
        "SM_SECRET_KEYS": TEST_KEY,
        "MAIL_URL": smtp.url,
        "MAIL_BATCH_SIZE": "20",
        "MAIL_LEASE_SECONDS": "2",
        "MAIL_POLL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }


def _wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("how", ["killed", "terminated"])
def test_nothing_is_lost_when_the_worker_stops_mid_batch(app, smtp, how):
    app.config["SM_CLOCK"] = None  # the worker process uses the real clock
    ids = _enqueue(app, 40)
    smtp.delay = 0.05
    env = _worker_env(app, smtp)
    worker = subprocess.Popen(
        [sys.executable, "-m", "server_manager_stub.cli", "mail-worker"], env=env
    )
    try:
        assert _wait_for(lambda: len(smtp.messages) >= 5), "the worker never delivered"
        worker.send_signal(signal.SIGKILL if how == "killed" else signal.SIGTERM)
        assert worker.wait(10) is not None
    finally:
        if worker.poll() is None:
            worker.kill()
    stopped_at = len(smtp.messages)
    assert stopped_at < 40, "the worker finished before it could be stopped"
    statuses = _statuses(app)
    if how == "terminated":
        assert "sending" not in statuses  # a clean stop gives its claims back at once
    else:
        time.sleep(2.1)  # a killed worker's claims come back when its lease runs out
    smtp.delay = 0
    done = subprocess.run(
        [sys.executable, "-m", "server_manager_stub.cli", "mail-worker", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _statuses(app) == {"sent": 40}
    delivered = {m.message["Subject"] for m in smtp.messages}
    assert delivered == {f"Message {i}" for i in range(40)}
    # Only the messages in flight at the moment of the kill (the sender's pipeline) may be
    # delivered twice; a clean stop sends nothing twice.
    assert len(smtp.messages) - 40 <= (_Sender.PIPELINE if how == "killed" else 0)
    assert len(ids) == 40


def test_mail_body_is_encrypted_at_rest(app):
    (message_id,) = _enqueue(app, to=["x@example.com"])
    with app.app_context():
        raw = (
            db.get_session()
            .execute(text("SELECT text_body FROM shell_outbox WHERE id = :id"), {"id": message_id})
            .scalar()
        )
    assert "Hello 0" not in raw and raw.startswith("gAAAA")


def test_retry_delay_doubles(app, smtp, clock):
    app.config.update(MAIL_URL=smtp.url, MAIL_MAX_ATTEMPTS=5, MAIL_RETRY_SECONDS=10)
    smtp.refuse = "451 4.3.0 Try again later"
    _enqueue(app)
    waits = []
    for _ in range(3):
        deliver_batch(app)
        with app.app_context():
            message = db.get_session().scalars(select(OutboxMessage)).one()
            waits.append(message.next_attempt_at - clock())
        clock.advance(seconds=1000)
    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]


def test_non_ascii_subject_and_body_arrive_intact(app, smtp):
    app.config.update(MAIL_URL=smtp.url, MAIL_FROM="Zoë's Server <noreply@example.com>")
    with app.app_context(), db.get_db(app).transaction() as s:
        enqueue(
            s,
            to=["zoe@example.com"],
            subject="Déploiement pour Zoë García – 4041",
            text="Grüße, Zoë!",
            html="<p>Grüße, <b>Zoë</b>!</p>",
        )
    assert deliver_batch(app).sent == 1
    email = smtp.messages[0].message
    assert str(email["Subject"]) == "Déploiement pour Zoë García – 4041"
    assert email["From"].addresses[0].display_name == "Zoë's Server"
    assert smtp.messages[0].mail_from == "noreply@example.com"
    assert email.get_body(("plain",)).get_content().strip() == "Grüße, Zoë!"
    assert "<b>Zoë</b>" in email.get_body(("html",)).get_content()
    assert all(len(line) <= 998 for line in smtp.messages[0].data.split(b"\r\n"))


def test_a_slow_batch_keeps_its_claim_and_another_worker_sends_nothing_twice(app, smtp):
    app.config.update(MAIL_URL=smtp.url, MAIL_LEASE_SECONDS=1, SM_CLOCK=None)
    _enqueue(app, 6)
    smtp.delay = 0.3  # a slow mail server: the batch outlives the one-second lease
    first = threading.Thread(target=lambda: deliver_batch(app, worker="slow"))
    first.start()
    while first.is_alive():
        deliver_batch(app, worker="eager")  # takes over only what the first one let lapse
        time.sleep(0.1)
    first.join()
    deliver_batch(app, worker="eager")
    subjects = [m.message["Subject"] for m in smtp.messages]
    assert sorted(subjects) == [f"Message {i}" for i in range(6)]  # each exactly once
    assert _statuses(app) == {"sent": 6}
