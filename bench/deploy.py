"""Benchmark: deploying 5,000 users (one Deploy request's work up to the outbox rows), against a
floor.

Measured: `blade.deploy.deploy_users(session, users, app.config)` for 5,000 users of the Default
profile (each with its own e-mail address), plus the commit of its transaction. The users are
loaded (`select(DeploymentUser)`) in the same transaction before the clock starts; the app, the
connection and the loading are not timed. Per user deploy_users makes a link and an auth token,
deletes the old cd_deployment row, sets cd_user.deployed_at/force_config, inserts a
cd_deployment row (token hashes, expiry) and a shell_outbox row whose render_args column is the
e-mail's arguments as JSON (template text included), Fernet-encrypted by the column type.

The floor ("baseline") is what storing the same rows costs with nothing but the standard
library: sqlite3 executemany of 5,000 cd_deployment rows and 5,000 shell_outbox rows with
values of the same lengths (render_args: random text as long as each encrypted value the real
run stored) and an executemany `UPDATE cd_user SET deployed_at=?, force_config=0 WHERE id=?`,
committed. Its values are made before the clock starts.

Each side runs REPEATS times on its own fresh copy of a just-migrated database holding the
5,000 users; the best time counts. Target: deploy / baseline <= 3. With --profile (or when the
target is missed) one more deploy runs under cProfile and the top 15 functions are printed.
The last line printed is `ratio: N.NN`.
"""

from __future__ import annotations

import base64
import cProfile
import io
import os
import pstats
import secrets
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    close_app,
    fresh_database,
    migrated_template,
    open_app,
    template_with_users,
)
from sqlalchemy import select

from server_manager_stub.db import get_db

USERS = 5_000
REPEATS = 3
TARGET = 3.0


@dataclass
class Stored:
    """Lengths of what the real deploy stored, row by row (for the baseline's values)."""

    user_ids: list[int]
    render_args: list[int]
    recipients: list[int]
    subjects: list[int]


# --- the real thing -------------------------------------------------------------------------


def run_deploy(workdir: Path, db_path: Path, profiler: cProfile.Profile | None = None) -> float:
    """Seconds of deploy_users for every user plus the commit, on the database `db_path`."""
    from blade.deploy import deploy_users
    from blade.models import DeploymentUser

    app = open_app(workdir, db_path)
    try:
        with app.app_context():
            with get_db(app).transaction() as s:
                users = list(s.scalars(select(DeploymentUser).order_by(DeploymentUser.id)))
                assert len(users) == USERS
                if profiler:
                    profiler.enable()
                start = time.perf_counter()
                outcome = deploy_users(s, users, app.config)
            elapsed = time.perf_counter() - start  # the block's end committed
            if profiler:
                profiler.disable()
    finally:
        close_app(app)
    assert outcome.done == USERS and not outcome.failures, (outcome.done, outcome.failures[:3])
    return elapsed


def check_deployed(db_path: Path) -> None:
    """Every user deployed once: a deployment row, an outbox row, deployed_at set."""
    with sqlite3.connect(db_path) as conn:
        counts = [
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM cd_deployment",
                "SELECT count(*) FROM shell_outbox",
                "SELECT count(*) FROM cd_user WHERE deployed_at IS NOT NULL",
            )
        ]
    conn.close()
    assert counts == [USERS] * 3, counts


def stored_lengths(db_path: Path) -> Stored:
    """The lengths of the outbox values the deploy stored, in user order."""
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "SELECT length(render_args), length(recipients), length(subject) FROM shell_outbox "
        "ORDER BY id"
    ).fetchall()
    user_ids = [r[0] for r in conn.execute("SELECT user_id FROM cd_deployment ORDER BY id")]
    conn.close()
    return Stored(user_ids, *(list(column) for column in zip(*rows, strict=True)))


# --- the baseline ---------------------------------------------------------------------------


def random_text(length: int) -> str:
    """URL-safe base64 text of `length` characters (what a Fernet token looks like)."""
    return base64.urlsafe_b64encode(os.urandom(length)).decode()[:length]


def baseline_rows(stored: Stored) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(cd_deployment rows, shell_outbox rows, cd_user updates) as deploy_users writes them."""
    now = datetime.now(UTC).replace(tzinfo=None)
    at, expires = (str(t) for t in (now, now + timedelta(days=42)))  # SQLAlchemy's format
    deployments = [
        (user_id, secrets.token_hex(32), secrets.token_hex(32), at, expires, 3, 0, None)
        for user_id in stored.user_ids
    ]
    messages = [
        (
            at,
            "client_deployment",
            random_text(n_to),
            random_text(n_subject),
            None,
            None,
            "client_deployment.deployment_email",
            random_text(n_args),
            "queued",
            0,
            at,
            None,
            None,
            None,
            None,
        )
        for n_args, n_to, n_subject in zip(
            stored.render_args, stored.recipients, stored.subjects, strict=True
        )
    ]
    updates = [(at, user_id) for user_id in stored.user_ids]
    return deployments, messages, updates


def run_baseline(db_path: Path, stored: Stored) -> float:
    """Seconds for sqlite3 executemany of rows of the same sizes, committed."""
    deployments, messages, updates = baseline_rows(stored)
    conn = sqlite3.connect(db_path)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")  # as the app's engine does
    start = time.perf_counter()
    conn.executemany("UPDATE cd_user SET deployed_at=?, force_config=0 WHERE id=?", updates)
    conn.executemany(
        "INSERT INTO cd_deployment (user_id, link_token_hash, auth_token_hash, created_at, "
        "expires_at, downloads_left, pin_failures, locked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        deployments,
    )
    conn.executemany(
        "INSERT INTO shell_outbox (created_at, source, recipients, subject, text_body, "
        "html_body, renderer, render_args, status, attempts, next_attempt_at, lease_until, "
        "claimed_by, last_error, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        messages,
    )
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


# --- measurements ---------------------------------------------------------------------------


def best_of(workdir: Path, template: Path) -> tuple[float, float, Stored]:
    """(best deploy seconds, best baseline seconds, lengths stored) over REPEATS fresh copies."""
    deploy_times, base_times = [], []
    stored = None
    for n in range(REPEATS):
        db_a = fresh_database(template, workdir / f"deploy-{n}.db")
        deploy_times.append(run_deploy(workdir, db_a))
        check_deployed(db_a)
        stored = stored or stored_lengths(db_a)

        db_b = fresh_database(template, workdir / f"base-{n}.db")
        base_times.append(run_baseline(db_b, stored))
        check_deployed(db_b)
        for path in (db_a, db_b):
            path.unlink()
        print(
            f"  run {n + 1}: deploy_users+commit {deploy_times[-1] * 1000:7.1f} ms   "
            f"baseline {base_times[-1] * 1000:7.1f} ms",
            flush=True,
        )
    return min(deploy_times), min(base_times), stored


def profile_deploy(workdir: Path, template: Path) -> None:
    """One more deploy under cProfile; print the top 15 by own time and by cumulative time."""
    db_path = fresh_database(template, workdir / "profile.db")
    profiler = cProfile.Profile()
    elapsed = run_deploy(workdir, db_path, profiler)
    db_path.unlink()
    print(f"\ncProfile of one deploy_users+commit ({elapsed * 1000:.0f} ms under the profiler)")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(15)
        table = out.getvalue()
        print(f"--- top 15 by {order}")
        print(table[table.index("   ncalls") :].rstrip())


def mean(values: list[int]) -> float:
    return sum(values) / len(values)


def main(force_profile: bool) -> None:
    print("Deploy benchmark: blade.deploy.deploy_users + commit vs sqlite3 executemany")
    print(
        f"({USERS:,} users of the Default profile, each with an e-mail address; fresh migrated "
        f"SQLite database per run; best of {REPEATS}; target deploy/baseline <= {TARGET:g})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        workdir = Path(tmp)
        template = template_with_users(workdir, migrated_template(workdir), USERS)
        print("timed: deploy_users(...) and the transaction's commit; not timed: loading users")
        deploy, base, stored = best_of(workdir, template)
        print(
            f"stored per user: render_args {mean(stored.render_args):,.0f} characters encrypted "
            f"(min {min(stored.render_args):,}, max {max(stored.render_args):,}), recipients "
            f"{mean(stored.recipients):.0f}, subject {mean(stored.subjects):.0f}"
        )
        ratio = deploy / base
        if force_profile or ratio > TARGET:
            profile_deploy(workdir, template)
    print("\nsummary")
    print(f"  deploy_users+commit: {deploy * 1000:7.1f} ms ({USERS / deploy:,.0f} users/s)")
    print(f"  sqlite3 baseline   : {base * 1000:7.1f} ms ({USERS / base:,.0f} users/s)")
    print(f"  ratio {ratio:.2f} (target <= {TARGET:g}: {'met' if ratio <= TARGET else 'MISSED'})")
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main(force_profile="--profile" in sys.argv[1:])
