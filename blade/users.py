"""Deployment users: list (search, sort, page), selections across pages, create, modify, delete."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, delete, func, literal, or_, select
from sqlalchemy.orm import Session

from server_manager_stub import clock
from server_manager_stub.validators import whole_number

from .models import DeploymentUser, Profile, with_keys

U = DeploymentUser

# Sortable columns: the query argument and the (indexed) column it sorts on.
SORTS = {
    "profile": U.profile_id,
    "first_name": U.first_name_key,
    "last_name": U.last_name_key,
    "number": U.directory_number,
    "mbg_sip_username": U.mbg_sip_username_key,
    "mcs_username": U.mcs_username_key,
    "email": U.email_key,
    "deployed": U.deployed_at,
    "downloaded": U.downloaded_at,
}
PAGE_SIZES = (25, 50, 100, 250)
# Prefix search runs on these (indexed) columns; every word typed must match one of them.
SEARCHED = (
    U.last_name_key,
    U.first_name_key,
    U.email_key,
    U.directory_number,
    U.mbg_sip_username_key,
    U.mcs_username_key,
)


class UserError(ValueError):
    """A change to a user that is refused, with the reason."""


def _prefix(column: Any, word: str) -> Any:
    """column starts with `word`, as an index range (binary collation on both databases)."""
    return and_(column >= word, column < word + "\U0010ffff")


def filtered(q: str) -> Select:
    """SELECT of users matching the search text (every word a prefix of some column)."""
    query = select(U)
    for word in q.lower().split()[:5]:
        query = query.where(or_(*(_prefix(col, word[:100]) for col in SEARCHED)))
    return query


def ordered(query: Select, sort: str, descending: bool) -> Select:
    """The query sorted by one of SORTS, then by id so that pages are stable."""
    column = SORTS.get(sort, U.last_name_key)
    if descending:
        return query.order_by(column.desc(), U.id.desc())
    return query.order_by(column, U.id)


@dataclass
class ListArgs:
    """What the Manage view was asked for: search, sort, page."""

    q: str = ""
    sort: str = "last_name"
    desc: bool = False
    page: int = 1
    size: int = 50

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ListArgs:
        """Read (and tame) query arguments."""

        def number(name: str, default: int) -> int:
            raw = args.get(name, "")
            value = whole_number(raw, 10**7)
            return value if value else default

        size = number("size", 50)
        return cls(
            q=args.get("q", "").strip()[:200],
            sort=args.get("sort", "last_name") if args.get("sort") in SORTS else "last_name",
            desc=args.get("desc") == "1",
            page=number("page", 1),
            size=size if size in PAGE_SIZES else 50,
        )


@dataclass
class UserPage:
    """One page of the Manage view."""

    users: list[DeploymentUser]
    total: int
    args: ListArgs
    profiles: dict[int, str]

    @property
    def pages(self) -> int:
        """Number of pages (at least one)."""
        return max(1, -(-self.total // self.args.size))


def list_page(s: Session, args: ListArgs) -> UserPage:
    """The users of one page, the total matching, and profile names for display."""
    base = filtered(args.q)
    total = s.scalar(select(func.count()).select_from(base.with_only_columns(U.id).subquery())) or 0
    pages = max(1, -(-total // args.size))
    args.page = min(args.page, pages)
    # LIMIT/OFFSET as literals: with bound parameters SQLite 3.40 walks the sort index through
    # every row testing the search (170 ms on 100k users) instead of using the search indexes.
    offset = (args.page - 1) * args.size
    query = (
        ordered(base, args.sort, args.desc)
        .limit(literal(args.size, literal_execute=True))
        .offset(literal(offset, literal_execute=True))
    )
    users = list(s.scalars(query))
    profiles = dict(s.execute(select(Profile.id, Profile.name)).all())
    return UserPage(users, total, args, profiles)


@dataclass
class Selection:
    """Which users an action is for: explicit ids, or every user matching `q` except some."""

    ids: list[int] = field(default_factory=list)
    all_matching: bool = False
    q: str = ""
    excluded: list[int] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: Mapping[str, Any], getlist: Any) -> Selection:
        """Read the selection fields of the Manage view's form."""

        def ints(name: str) -> list[int]:
            return [i for v in getlist(name)[:10_000] if (i := whole_number(v)) is not None]

        return cls(
            ids=ints("ids"),
            all_matching=form.get("select_all") == "1",
            q=str(form.get("q", ""))[:200],
            excluded=ints("excluded"),
        )

    def query(self) -> Select:
        """SELECT of the selected users' ids (never a list of every id)."""
        if self.all_matching:
            query = filtered(self.q).with_only_columns(U.id)
            if self.excluded:
                query = query.where(U.id.not_in(self.excluded))
            return query
        return select(U.id).where(U.id.in_(self.ids or [-1]))

    def is_empty(self) -> bool:
        """True when nothing is selected."""
        return not self.all_matching and not self.ids


def count_selected(s: Session, selection: Selection) -> int:
    """How many users the selection covers."""
    return s.scalar(select(func.count()).select_from(selection.query().subquery())) or 0


def iter_selected(
    s: Session, selection: Selection, batch: int = 1000
) -> Iterator[list[DeploymentUser]]:
    """The selected users in batches of `batch`, in id order (memory stays flat)."""
    last = 0
    while True:
        ids = list(
            s.scalars(
                selection.query()
                .where(U.id > last)
                .order_by(U.id)
                .limit(literal(batch, literal_execute=True))
            )
        )
        if not ids:
            return
        yield list(s.scalars(select(U).where(U.id.in_(ids)).order_by(U.id)))
        last = ids[-1]


def delete_selected(s: Session, selection: Selection) -> int:
    """Delete the selected users (and, through the database, what was deployed for them)."""
    deleted = 0
    while True:
        ids = list(
            s.scalars(selection.query().order_by(U.id).limit(literal(5000, literal_execute=True)))
        )
        if not ids:
            return deleted
        deleted += s.execute(delete(U).where(U.id.in_(ids))).rowcount
        if not selection.all_matching:
            return deleted


def create_user(s: Session, values: dict[str, Any], source: str = "manual") -> DeploymentUser:
    """Store a user from validated values."""
    now = clock.now()
    user = U(**with_keys(dict(values)), source=source, created_at=now, updated_at=now)
    s.add(user)
    s.flush()
    return user


def update_user(s: Session, user: DeploymentUser, values: dict[str, Any]) -> list[str]:
    """Change a manually created user; return warnings for the administrator."""
    if user.imported:
        raise UserError(
            "This user was imported and cannot be modified here: change it at its "
            "source, then use Sync data."
        )
    warnings = []
    new_account = values.get("mcs_username", user.mcs_username)
    if user.deployed_at and new_account != user.mcs_username:
        warnings.append(
            f"The MiCollab Client Service user name changed from "
            f"{user.mcs_username or '(none)'} to {new_account or '(none)'} on a "
            "deployed user: the client needs a factory reset and a new deployment "
            "(Deploy)."
        )
    for key, value in with_keys(dict(values)).items():
        setattr(user, key, value)
    user.updated_at = clock.now()
    s.flush()
    return warnings


def generate_pin(digits: int = 6) -> str:
    """A random Deployment PIN from the operating system's cryptographic source."""
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def users_per_profile(s: Session) -> dict[int, int]:
    """profile id -> number of users."""
    return dict(s.execute(select(U.profile_id, func.count()).group_by(U.profile_id)).all())
