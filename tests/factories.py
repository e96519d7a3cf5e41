"""Test data written through the same services the pages use."""

from __future__ import annotations

from sqlalchemy import select

from blade.models import DeploymentUser, Profile
from blade.users import create_user
from server_manager_stub import db


def default_profile_id(app) -> int:
    with app.app_context():
        return db.get_session().scalar(select(Profile.id).where(Profile.is_default))


def make_users(app, count: int, **overrides) -> list[int]:
    """Create `count` manual users (last names User0000, User0001 …); return their ids."""
    profile_id = overrides.pop("profile_id", None) or default_profile_id(app)
    ids = []
    with app.app_context(), db.get_db(app).transaction() as s:
        for i in range(count):
            values = {
                "profile_id": profile_id,
                "first_name": f"First{i:04}",
                "last_name": f"User{i:04}",
                "directory_number": str(5000 + i),
                "email": f"user{i:04}@example.com",
                "mbg_sip_username": f"tw{5000 + i}",
                "mcs_username": f"mcs{i:04}",
            }
            values.update({k: (v(i) if callable(v) else v) for k, v in overrides.items()})
            ids.append(create_user(s, values).id)
    return ids


def user(app, user_id: int) -> DeploymentUser | None:
    with app.app_context():
        return db.get_session().get(DeploymentUser, user_id)


def all_users(app) -> list[DeploymentUser]:
    with app.app_context():
        return list(db.get_session().scalars(select(DeploymentUser).order_by(DeploymentUser.id)))
