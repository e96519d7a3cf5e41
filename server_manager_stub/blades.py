"""Blades: the base class applications extend, entry-point discovery and the menu."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from sqlalchemy.orm import Session

from .config import Setting

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "server_manager.blades"
SECTIONS = ("Applications", "Administration", "Security")


@dataclass(frozen=True)
class MenuItem:
    """A link in the left navigation."""

    title: str
    endpoint: str
    section: str = "Applications"
    group: str | None = None  # an application's title; its tabs are listed under it


@dataclass(frozen=True)
class ScheduledCheck:
    """Work run by `server-manager tick`: fn(session, now, app); must be idempotent."""

    name: str
    fn: Callable[[Session, datetime, Flask], Any]
    every_seconds: int = 0  # 0: on every tick


@dataclass
class Blade:
    """An application the shell hosts. Subclass it and name the subclass in an entry point."""

    name: str = ""
    title: str = ""
    menu_title: str = ""
    menu: list[MenuItem] = field(default_factory=list)

    def blueprints(self) -> list[Blueprint]:
        """Blueprints to register (their URL prefixes are their own)."""
        return []

    def scheduled_checks(self) -> list[ScheduledCheck]:
        """Checks that `tick` runs."""
        return []

    def settings(self) -> tuple[Setting, ...]:
        """Environment settings of this blade, read like the shell's own (config.Setting)."""
        return ()

    def initialize(self, s: Session, app: Flask) -> list[str]:
        """Run by `server-manager init` after migrating; returns lines to print."""
        return []

    def migrations_dir(self) -> Path | None:
        """Folder of this blade's Alembic revisions (its own branch), if it has tables."""
        return None

    def init_app(self, app: Flask) -> None:
        """Hook for anything else the blade sets up on the app."""


@dataclass
class LoadError:
    """A blade the shell refused, and why."""

    entry_point: str
    reason: str


def discover(enabled: str) -> tuple[list[Blade], list[LoadError]]:
    """Load the blades named in `enabled` ('*' = all) from the entry point group."""
    wanted = None if enabled.strip() == "*" else {n.strip() for n in enabled.split(",")}
    blades: list[Blade] = []
    errors: list[LoadError] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if wanted is not None and ep.name not in wanted:
            continue
        if ep.name in seen:
            errors.append(
                LoadError(
                    ep.name,
                    f"another installed package also provides a blade "
                    f"named {ep.name!r}; neither copy is loaded twice",
                )
            )
            continue
        seen.add(ep.name)
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not stop the shell
            log.exception("blade %s failed to import", ep.name)
            errors.append(LoadError(ep.name, f"it failed to import: {type(exc).__name__}: {exc}"))
            continue
        if not (isinstance(obj, type) and issubclass(obj, Blade)):
            errors.append(LoadError(ep.name, f"{ep.value} is not a subclass of Blade"))
            log.error("blade %s refused: %s is not a Blade subclass", ep.name, ep.value)
            continue
        try:
            blade = obj()
        except Exception as exc:
            log.exception("blade %s failed to start", ep.name)
            errors.append(LoadError(ep.name, f"it failed to start: {type(exc).__name__}: {exc}"))
            continue
        if not blade.name or any(b.name == blade.name for b in blades):
            errors.append(LoadError(ep.name, f"its name {blade.name!r} is empty or already taken"))
            log.error("blade %s refused: name %r clashes", ep.name, blade.name)
            continue
        blades.append(blade)
    if wanted:
        for missing in sorted(wanted - seen):
            errors.append(
                LoadError(missing, "SM_BLADES names it but no installed package provides it")
            )
    return blades, errors


def menu_sections(
    blades: list[Blade], shell_items: list[MenuItem]
) -> list[tuple[str, list[MenuItem]]]:
    """The navigation: each section with its items, blades' applications first."""
    items = [i for b in blades for i in b.menu] + shell_items
    return [
        (section, [i for i in items if i.section == section])
        for section in SECTIONS
        if any(i.section == section for i in items)
    ]
