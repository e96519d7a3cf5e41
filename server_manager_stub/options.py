"""Settings an administrator changes in the UI, stored as JSON values under a key."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base


class Option(Base):
    """One stored setting."""

    __tablename__ = "shell_option"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def get(s: Session, key: str, default: Any = None) -> Any:
    """The stored value of `key`, or `default`."""
    raw = s.scalar(select(Option.value).where(Option.key == key))
    return default if raw is None else json.loads(raw)


def put(s: Session, key: str, value: Any) -> None:
    """Store `value` under `key`; None deletes it."""
    row = s.get(Option, key)
    if value is None:
        if row is not None:
            s.delete(row)
        return
    if row is None:
        s.add(Option(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
