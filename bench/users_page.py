"""Benchmark: the Users tab's Manage page on 100,000 users against the same page on 1,000 users.

Two fresh migrated SQLite databases are filled (SQLAlchemy Core executemany) with 100,000 and
1,000 users; last names are ~200 surnames with a number suffix so that sorting and prefix
search have realistic work. With a logged-in Flask test client, for each database, this times
the full request (routing, login check, queries, template) of
  (a) the first page          /client-deployment/
  (b) a sorted page           /client-deployment/?sort=number&desc=1
  (c) a prefix search         /client-deployment/?q=<prefix matching a few dozen users>
after a warm-up, as the median of REQUESTS requests each. The search prefix is chosen per
database so that it matches a few dozen users in both (same page size rendered); the number
of matches is printed.

Target: (sum of the three medians on 100k) / (sum on 1k) <= 2, i.e. the page does not grow
with the table. The last line printed is `ratio: N.NN`.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path

from _common import (
    ADMIN_PASSWORD,
    close_app,
    fresh_database,
    insert_users,
    migrated_template,
    open_app,
)
from flask import Flask
from flask.testing import FlaskClient

from server_manager_stub.auth import create_admin
from server_manager_stub.db import get_db

SIZES = (100_000, 1_000)
REQUESTS = 30
WARMUP = 5
SEARCH_SURNAME = "Hamilton"  # the surname the search prefixes are taken from
WANTED_MATCHES = 40  # "a few dozen"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


# --- the data -------------------------------------------------------------------------------


def fill(app: Flask, count: int) -> None:
    """Insert `count` users in batches, one transaction."""
    insert_users(app, count)
    # No ANALYZE: the app never runs it, so the query planner works without statistics here too.


# --- the browser ----------------------------------------------------------------------------


def logged_in_client(app: Flask) -> FlaskClient:
    """A test client logged in as a new primary administrator."""
    with app.app_context(), get_db(app).transaction() as s:
        create_admin(s, "admin", ADMIN_PASSWORD, primary=True)
    client = app.test_client()
    token = CSRF.search(client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.status_code
    return client


def matches(app: Flask, q: str) -> int:
    """How many users the Manage page's search finds for `q`."""
    from blade.users import ListArgs, list_page

    with app.app_context(), get_db(app).transaction() as s:
        return list_page(s, ListArgs(q=q)).total


def search_prefix(app: Flask) -> tuple[str, int]:
    """A prefix of SEARCH_SURNAME (+ digits) matching about WANTED_MATCHES users."""
    name = SEARCH_SURNAME.lower()
    candidates = [name[:n] for n in range(2, len(name) + 1)] + [f"{name}{d}" for d in range(1, 10)]
    counted = [(q, matches(app, q)) for q in candidates]
    return min(counted, key=lambda qc: (abs(qc[1] - WANTED_MATCHES), -len(qc[0])))


def median_ms(client: FlaskClient, url: str) -> float:
    """Median time of REQUESTS GETs of `url` (after WARMUP untimed ones), in milliseconds."""
    for _ in range(WARMUP):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times) * 1000


# --- the measurement ------------------------------------------------------------------------


def measure(workdir: Path, template: Path, count: int) -> dict[str, float]:
    """Median ms of the three pages on a database of `count` users."""
    db_path = fresh_database(template, workdir / f"users-{count}.db")
    app = open_app(workdir, db_path)
    try:
        start = time.perf_counter()
        fill(app, count)
        print(f"\n{count:,} users (inserted in {time.perf_counter() - start:.1f} s)")
        client = logged_in_client(app)
        q, found = search_prefix(app)
        pages = [
            ("first", "first page", "/client-deployment/"),
            ("sorted", "sorted (number desc)", "/client-deployment/?sort=number&desc=1"),
            ("search", f"search q={q} ({found} matches)", f"/client-deployment/?q={q}"),
        ]
        result = {}
        for key, label, url in pages:
            result[key] = ms = median_ms(client, url)
            print(f"  {label:<34} {ms:7.2f} ms  {url}")
        if count != max(SIZES):
            # For reference: the 100k database's search text on this database (not in ratio).
            q_big = f"{SEARCH_SURNAME.lower()}1"
            ms = median_ms(client, f"/client-deployment/?q={q_big}")
            print(
                f"  (reference, not in ratio: q={q_big}, {matches(app, q_big)} matches: "
                f"{ms:.2f} ms)"
            )
    finally:
        close_app(app)
        db_path.unlink()
    return result


def main() -> None:
    print("Users Manage page benchmark: render time on 100,000 users vs on 1,000 users")
    print(
        f"(median of {REQUESTS} requests after {WARMUP} warm-up, logged-in Flask test client; "
        "target: sum of medians 100k / 1k <= 2)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-users-") as tmp:
        workdir = Path(tmp)
        template = migrated_template(workdir)
        results = {count: measure(workdir, template, count) for count in SIZES}
    big, small = (sum(results[n].values()) for n in SIZES)
    ratio = big / small
    print("\nsummary")
    for n in SIZES:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in results[n].items())
        print(f"  {n:>7,} users: {parts}  (sum {sum(results[n].values()):.2f} ms)")
    print(f"  ratio 100k/1k: {ratio:.2f} (target <= 2: {'met' if ratio <= 2 else 'MISSED'})")
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
