"""Benchmark: CSV import of 100,000 users through blade.csv_io.import_csv, against a floor.

The floor ("baseline") is what the same work costs with nothing but the standard library:
csv.reader over the same file and sqlite3 executemany of the same column values (the same
cd_user columns the importer writes, shadow `*_key` columns and fixed columns included) into
a fresh migrated database, committed. The importer additionally validates every cell, goes
through SQLAlchemy and (second file) encrypts the passwords.

Measured (best of REPEATS, each run on a fresh copy of a just-migrated database):
  1. 100k rows, no secret columns: importer / baseline        target <= 4
  2. 100k rows, three password columns filled: importer / baseline (baseline stores plain text)
  3. peak memory growth of the importer on file 1, in a child process  target < 100 MB

The last line printed is `ratio: N.NN`, the ratio of measurement 1.
"""

from __future__ import annotations

import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    FIRST_NAMES,
    SURNAMES,
    close_app,
    default_profile_id,
    fresh_database,
    migrated_template,
    open_app,
)

ROWS = 100_000
REPEATS = 3
PLAIN_HEADER = [
    "Firstname",
    "Lastname",
    "Number",
    "Email",
    "MBG SIP User name",
    "MiCollab Client Service User name",
    "PBX SIP Host",
]
SECRET_HEADER = [
    *PLAIN_HEADER,
    "PBX SIP Password",
    "MBG SIP Password",
    "MiCollab Client Service Password",
]
# The CSV column -> cd_user column, for the baseline.
CSV_TO_COLUMN = {
    "Firstname": "first_name",
    "Lastname": "last_name",
    "Number": "directory_number",
    "Email": "email",
    "MBG SIP User name": "mbg_sip_username",
    "MiCollab Client Service User name": "mcs_username",
    "PBX SIP Host": "pbx_sip_host",
    "PBX SIP Password": "pbx_sip_password",
    "MBG SIP Password": "mbg_sip_password",
    "MiCollab Client Service Password": "mcs_password",
}
KEYED = ("first_name", "last_name", "email", "mbg_sip_username", "mcs_username")


# --- the files ------------------------------------------------------------------------------


def write_csv(path: Path, *, secrets: bool) -> Path:
    """ROWS users with distinct numbers, e-mails and accounts; passwords when `secrets`."""
    rnd = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(SECRET_HEADER if secrets else PLAIN_HEADER)
        for i in range(ROWS):
            first, last = rnd.choice(FIRST_NAMES), rnd.choice(SURNAMES)
            row = [
                first,
                last,
                str(400000 + i),
                f"{first.lower()}.{last.lower()}{i}@example.com",
                f"tw{400000 + i}",
                f"{first[0].lower()}{last.lower()}{i}",
                "pbx.example.com",
            ]
            if secrets:
                row += [f"pbx-Secret-{i}", f"mbg-Secret-{i}", f"mcs-Secret-{i}"]
            out.writerow(row)
    return path


# --- the importer ---------------------------------------------------------------------------


def run_importer(workdir: Path, db_path: Path, csv_path: Path) -> tuple[float, object]:
    """Seconds import_csv takes (one transaction, committed) on the database `db_path`."""
    from blade.csv_io import import_csv
    from server_manager_stub.db import get_db

    app = open_app(workdir, db_path)
    profile_id = default_profile_id(app)
    try:
        with app.app_context():
            start = time.perf_counter()
            with get_db(app).transaction() as s, csv_path.open("rb") as raw:
                result = import_csv(s, raw, profile_id=profile_id, partial=False, overwrite=False)
            elapsed = time.perf_counter() - start
    finally:
        close_app(app)
    return elapsed, result


# --- the baseline ---------------------------------------------------------------------------


def baseline_columns(header: list[str]) -> list[str]:
    """Every cd_user column the importer writes for a new row (all but id)."""
    given = [CSV_TO_COLUMN[h] for h in header]
    defaults = [
        c
        for c in (
            "pbx_sip_username",
            "pbx_sip_password",
            "mbg_sip_password",
            "mcs_host",
            "mcs_password",
            "deployment_pin",
        )
        if c not in given
    ]
    fixed = [
        "profile_id",
        "source",
        "source_connection_id",
        "source_record_id",
        "deployed_at",
        "downloaded_at",
        "force_config",
        "created_at",
        "updated_at",
    ]
    return [*given, *defaults, *fixed, *(f"{k}_key" for k in KEYED)]


def run_baseline(db_path: Path, csv_path: Path, profile_id: int) -> float:
    """Seconds for csv.reader + sqlite3 executemany of the same values, committed."""
    start = time.perf_counter()
    conn = sqlite3.connect(db_path)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")  # as the app's engine does
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        columns = baseline_columns(header)
        given = [CSV_TO_COLUMN[h] for h in header]
        key_at = [given.index(k) for k in KEYED]
        n_defaults = len(columns) - len(given) - 9 - len(KEYED)
        defaults = tuple(
            None if c.endswith("password") or c == "deployment_pin" else ""
            for c in columns[len(given) : len(given) + n_defaults]
        )
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        fixed = (profile_id, "csv", None, None, None, None, False, now, now)
        sql = f"INSERT INTO cd_user ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        rows = ((*row, *defaults, *fixed, *(row[i].lower() for i in key_at)) for row in reader)
        conn.executemany(sql, rows)
    conn.commit()
    conn.close()
    return time.perf_counter() - start


def count_users(db_path: Path) -> int:
    """Rows in cd_user (to check that both sides inserted everything)."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT count(*) FROM cd_user").fetchone()[0]


# --- measurements ---------------------------------------------------------------------------


def best_of(workdir: Path, template: Path, csv_path: Path, label: str) -> tuple[float, float]:
    """(best importer seconds, best baseline seconds) over REPEATS fresh databases each."""
    imp_times, base_times = [], []
    profile_id = None
    for n in range(REPEATS):
        db_a = fresh_database(template, workdir / f"imp-{label}-{n}.db")
        elapsed, result = run_importer(workdir, db_a, csv_path)
        assert (result.created, result.rejected) == (ROWS, 0), result
        assert count_users(db_a) == ROWS
        imp_times.append(elapsed)

        db_b = fresh_database(template, workdir / f"base-{label}-{n}.db")
        if profile_id is None:
            app = open_app(workdir, db_b)
            profile_id = default_profile_id(app)
            close_app(app)
        base_times.append(run_baseline(db_b, csv_path, profile_id))
        assert count_users(db_b) == ROWS
        for path in (db_a, db_b):
            path.unlink()
        print(
            f"  run {n + 1}: importer {imp_times[-1]:6.2f} s   baseline {base_times[-1]:6.2f} s",
            flush=True,
        )
    return min(imp_times), min(base_times)


def measure_memory(workdir: Path, template: Path, csv_path: Path, mode: str) -> float:
    """Peak memory growth (MB) of one import, measured in a child process (`mode`: rss|trace)."""
    db_path = fresh_database(template, workdir / f"mem-{mode}.db")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            mode,
            str(workdir),
            str(db_path),
            str(csv_path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    db_path.unlink()
    return json.loads(out.strip().splitlines()[-1])["mb"]


def current_rss_kib() -> int:
    """Resident memory now (KiB), so that the growth is peak-after minus now-before."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def memory_child(mode: str, workdir: Path, db_path: Path, csv_path: Path) -> None:
    """In the child: import once and print the peak growth in MB as JSON."""
    from blade.csv_io import import_csv
    from server_manager_stub.db import get_db

    app = open_app(workdir, db_path)
    profile_id = default_profile_id(app)
    with app.app_context():
        if mode == "trace":
            tracemalloc.start()
        before = current_rss_kib()
        with get_db(app).transaction() as s, csv_path.open("rb") as raw:
            import_csv(s, raw, profile_id=profile_id, partial=False, overwrite=False)
        if mode == "trace":
            mb = tracemalloc.get_traced_memory()[1] / 2**20
        else:
            mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    close_app(app)
    print(json.dumps({"mb": mb}))


def main() -> None:
    print("CSV import benchmark: blade.csv_io.import_csv vs csv.reader + sqlite3 executemany")
    print(
        f"({ROWS:,} rows into a fresh migrated SQLite database, one transaction; "
        f"best of {REPEATS}; target importer/baseline <= 4, memory growth < 100 MB)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp:
        workdir = Path(tmp)
        template = migrated_template(workdir)
        plain = write_csv(workdir / "users.csv", secrets=False)
        secret = write_csv(workdir / "users-secrets.csv", secrets=True)
        print(
            f"files: {plain.stat().st_size / 2**20:.1f} MB (no secrets), "
            f"{secret.stat().st_size / 2**20:.1f} MB (3 password columns)"
        )

        print("\n[1] no secret columns")
        imp, base = best_of(workdir, template, plain, "plain")
        ratio = imp / base
        print(
            f"  best: importer {imp:.2f} s ({ROWS / imp:,.0f} rows/s), "
            f"baseline {base:.2f} s ({ROWS / base:,.0f} rows/s), ratio {ratio:.2f}"
        )

        print("\n[2] three password columns (importer encrypts them; baseline stores plain text)")
        imp_s, base_s = best_of(workdir, template, secret, "secret")
        print(
            f"  best: importer {imp_s:.2f} s ({ROWS / imp_s:,.0f} rows/s), "
            f"baseline {base_s:.2f} s ({ROWS / base_s:,.0f} rows/s), "
            f"ratio {imp_s / base_s:.2f}"
        )

        print("\n[3] peak memory growth of the importer, file 1 (child processes)")
        rss = measure_memory(workdir, template, plain, "rss")
        traced = measure_memory(workdir, template, plain, "trace")
        print(
            f"  RSS growth (peak RSS - RSS before): {rss:.1f} MB   "
            f"tracemalloc peak: {traced:.1f} MB   (target < 100 MB)"
        )

        print("\nsummary")
        print(
            f"  no secrets : importer {imp:.2f} s, baseline {base:.2f} s, ratio {ratio:.2f} "
            f"(target <= 4: {'met' if ratio <= 4 else 'MISSED'})"
        )
        print(
            f"  3 passwords: importer {imp_s:.2f} s, baseline {base_s:.2f} s, "
            f"ratio {imp_s / base_s:.2f}"
        )
        print(
            f"  memory     : {max(rss, traced):.1f} MB "
            f"(target < 100 MB: {'met' if max(rss, traced) < 100 else 'MISSED'})"
        )
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
