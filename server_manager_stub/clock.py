"""The current time, injectable so tests and scheduled checks can move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context


def system_now() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(UTC)


def now() -> datetime:
    """The app's notion of now: `SM_CLOCK` from its config when set, else the system time."""
    if has_app_context():
        clock: Callable[[], datetime] | None = current_app.config.get("SM_CLOCK")
        if clock is not None:
            return clock()
    return system_now()


class FrozenClock:
    """A settable clock for tests and demos: `clock.advance(days=29)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or system_now()

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by a timedelta given as keywords."""
        self.current += timedelta(**delta)
        return self.current
