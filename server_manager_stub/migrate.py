"""Alembic for the shell and its blades: one environment, a branch per room."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from flask import Flask

import migrations

from .db import get_db

HERE = Path(migrations.__file__).parent


def alembic_config(app: Flask) -> Config:
    """An Alembic Config for `app`: every branch under migrations/versions (shell, blade), plus
    the revisions a separately installed blade brings (Blade.migrations_dir)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    locations = sorted(
        str(p) for p in (HERE / "versions").iterdir() if p.is_dir() and not p.name.startswith("__")
    )
    locations += [str(d) for b in app.extensions["sm_blades"] if (d := b.migrations_dir())]
    cfg.set_main_option("version_locations", ":".join(locations))
    cfg.attributes["app"] = app
    return cfg


def upgrade(app: Flask, target: str = "heads") -> None:
    """Upgrade the database to `target` (default: every branch's head), logging each step."""
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        command.upgrade(alembic_config(app), target)
    finally:
        logger.setLevel(level)


def downgrade(app: Flask, target: str = "base") -> None:
    """Downgrade the database to `target`."""
    command.downgrade(alembic_config(app), target)


def check(app: Flask) -> None:
    """Raise if the models and the migrated schema differ (alembic check)."""
    command.check(alembic_config(app))


def heads(app: Flask) -> tuple[set[str], set[str]]:
    """(revisions the database is at, including those they depend on; the code's heads)."""
    script = ScriptDirectory.from_config(alembic_config(app))
    with get_db(app).engine.connect() as conn:
        stored = tuple(MigrationContext.configure(conn).get_current_heads())
    # Revisions of blades that are not loaded now are not ours to judge: ignore them.
    known = []
    for rev in stored:
        try:
            script.revision_map.get_revision(rev)
        except ResolutionError:
            continue
        known.append(rev)
    # Alembic stores only the tips: every ancestor of a stored revision is reached too.
    reached = {r.revision for r in script.revision_map.iterate_revisions(tuple(known), "base")}
    return reached, set(script.get_heads())


def schema_problem(app: Flask) -> str | None:
    """A message saying what to run when the database is not at the code's revisions."""
    try:
        current, expected = heads(app)
    except Exception as exc:  # unreachable database, unknown revision, ...
        return (
            f"The database cannot be checked ({type(exc).__name__}: {exc}). "
            "Check DATABASE_URL, then run `server-manager init`."
        )
    if expected <= current:
        return None
    if not current:
        return "The database is empty. Run `server-manager init` to create its tables."
    return (
        "The database is not at this version of the code. Run `server-manager init` to "
        "upgrade it (back it up first)."
    )
