"""Shared helpers of the benchmark scripts: migrated SQLite databases and apps on them."""

from __future__ import annotations

import logging
import random
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import insert, select

# `python bench/x.py` puts bench/ first on sys.path; the project itself must import too.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server_manager_stub import create_app, db, migrate  # noqa: E402

# One key for every app of the process (the key ring is process-wide).
SECRET_KEY = Fernet.generate_key().decode()
# Public name in deployment links: https://<this>/client-deployment/d/<43-char token> is 93
# characters, about what a real server's links are.
SERVER_FQDN = "servermgr.example.com"
ADMIN_PASSWORD = "correct horse battery staple"  # noqa: S105 (a throw-away benchmark database)


def _quiet_alembic() -> None:
    """Upgrades log each revision at INFO; the benchmarks' output is easier to read without."""
    logging.getLogger("alembic.runtime.migration").addFilter(lambda record: False)


def app_config(workdir: Path, db_path: Path, **extra) -> dict:
    """Settings of an app on the SQLite file `db_path`."""
    return {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "SERVER_FQDN": SERVER_FQDN,
        "SM_INSTANCE_DIR": str(workdir / f"instance-{db_path.stem}"),
        "SECRET_KEY": "bench-secret-key",
        "SM_SECRET_KEYS": [SECRET_KEY],
        "LOG_LEVEL": "WARNING",
        "PASSWORD_HASHER": "fast",
        "MAIL_URL": "",
        **extra,
    }


def migrated_template(workdir: Path) -> Path:
    """Create and migrate one SQLite database; fresh databases are copies of it."""
    _quiet_alembic()
    path = workdir / "template.db"
    app = create_app({**app_config(workdir, path), "SM_SKIP_SCHEMA_CHECK": True})
    migrate.upgrade(app)
    db.get_db(app).engine.dispose()  # closes the file: WAL checkpointed, -wal removed
    return path


def fresh_database(template: Path, path: Path) -> Path:
    """A fresh migrated database at `path` (a copy of the just-migrated template)."""
    shutil.copyfile(template, path)
    return path


def open_app(workdir: Path, db_path: Path, **extra) -> Flask:
    """The app on `db_path` (`extra`: more settings)."""
    return create_app(app_config(workdir, db_path, **extra))


def close_app(app: Flask) -> None:
    """Close the app's database connections."""
    db.get_db(app).engine.dispose()


def default_profile_id(app: Flask) -> int:
    """Id of the shipped Default profile."""
    from blade.models import Profile

    with app.app_context(), db.get_db(app).transaction() as s:
        return s.scalar(select(Profile.id).where(Profile.is_default))


# ~200 common surnames and some first names, for realistic names, sorting and prefix search.
SURNAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook
Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera
Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason
Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox
Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan
Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos
Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews
Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews
""".split()  # noqa: SIM905 (reads as a list of names)
FIRST_NAMES = """
Anna James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy
Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew
Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy
Deborah
""".split()  # noqa: SIM905 (reads as a list of names)


def user_rows(count: int, profile_id: int, seed: int = 7) -> Iterator[dict]:
    """`count` users as column dicts (every NOT NULL column, shadow *_key columns lower-cased).
    Each has its own e-mail address."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    for i in range(count):
        first = rnd.choice(FIRST_NAMES)
        last = f"{rnd.choice(SURNAMES)}{rnd.randrange(100)}"
        email = f"{first.lower()}.{last.lower()}.{i}@example.com"
        mbg, mcs = f"tw{500000 + i}", f"{first[0].lower()}{last.lower()}x{i}"
        yield {
            "profile_id": profile_id,
            "first_name": first,
            "last_name": last,
            "directory_number": str(500000 + rnd.randrange(10**6)),
            "email": email,
            "pbx_sip_host": "pbx.example.com",
            "pbx_sip_username": str(500000 + i),
            "mbg_sip_username": mbg,
            "mcs_host": "",
            "mcs_username": mcs,
            "source": "manual",
            "force_config": False,
            "created_at": now,
            "updated_at": now,
            "first_name_key": first.lower(),
            "last_name_key": last.lower(),
            "email_key": email,
            "mbg_sip_username_key": mbg,
            "mcs_username_key": mcs,
        }


def insert_users(app: Flask, count: int, batch: int = 10_000) -> None:
    """Insert `count` users of the Default profile (Core executemany in batches), one
    transaction."""
    from blade.models import DeploymentUser

    profile_id = default_profile_id(app)
    table = DeploymentUser.__table__
    with app.app_context(), db.get_db(app).transaction() as s:
        rows = []
        for row in user_rows(count, profile_id):
            rows.append(row)
            if len(rows) == batch:
                s.execute(insert(table), rows)
                rows = []
        if rows:
            s.execute(insert(table), rows)


def template_with_users(workdir: Path, template: Path, count: int) -> Path:
    """A migrated database holding `count` users; fresh databases with users are copies of it."""
    path = fresh_database(template, workdir / f"template-{count}-users.db")
    app = open_app(workdir, path)
    insert_users(app, count)
    close_app(app)  # checkpoints the WAL into the file, so that copying the file is enough
    return path
