"""Deployment Profiles: create, modify, copy names, delete rules, and what uses a profile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server_manager_stub import clock

from .models import Profile
from .users import users_per_profile


class ProfileError(ValueError):
    """A profile operation that is refused, with the reason for the administrator."""


def list_profiles(s: Session) -> list[Profile]:
    """Every profile, the Default one first, then by name."""
    return list(s.scalars(select(Profile).order_by(Profile.is_default.desc(), Profile.name_key)))


def create_profile(s: Session, values: dict[str, Any]) -> Profile:
    """Store a new profile from validated form values."""
    now = clock.now()
    profile = Profile(
        **values,
        name_key=values["name"].strip().lower(),
        is_default=False,
        created_at=now,
        updated_at=now,
    )
    s.add(profile)
    s.flush()
    return profile


def update_profile(s: Session, profile: Profile, values: dict[str, Any]) -> Profile:
    """Change a profile to validated form values."""
    for key, value in values.items():
        setattr(profile, key, value)
    profile.name_key = profile.name.strip().lower()
    profile.updated_at = clock.now()
    s.flush()
    return profile


def copy_name(s: Session, name: str) -> str:
    """'Copy of X', or 'Copy of X (2)', (3)… — the first that is free (within 64 characters)."""
    taken = set(s.scalars(select(Profile.name_key)))
    base = f"Copy of {name}"[:64]
    if base.lower() not in taken:
        return base
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = base[: 64 - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1


def delete_profile(s: Session, profile: Profile) -> None:
    """Delete a profile unless it is the Default one or users still use it."""
    if profile.is_default:
        raise ProfileError(
            "The Default profile is part of the application and cannot be "
            "deleted; modify it instead."
        )
    users = users_per_profile(s).get(profile.id, 0)
    if users:
        raise ProfileError(
            f"The profile '{profile.name}' is used by {users} user(s); move them "
            "to another profile first."
        )
    s.delete(profile)
