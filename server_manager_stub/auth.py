"""Administrator accounts: login/logout with database-backed sessions, lock-out, decorators."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from sqlalchemy import ForeignKey, String, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock
from .db import Base, get_session
from .events import clear_alarm, raise_alarm

# --- models ------------------------------------------------------------------------------


class Admin(Base):
    """An administrator account of the server manager."""

    __tablename__ = "shell_admin"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_primary: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]

    # Flask-Login protocol; the id it keeps in the cookie is the session token, not our id.
    session_token = None  # set when loaded from a session; never stored
    is_active = True
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        """True: a loaded Admin always comes from a valid session."""
        return True

    def get_id(self) -> str | None:
        """The token of this login session (what Flask-Login stores in the cookie)."""
        return self.session_token


class AdminSession(Base):
    """One login session; deleting the row ends it at once (logout, password change)."""

    __tablename__ = "shell_admin_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    admin_id: Mapped[int] = mapped_column(
        ForeignKey("shell_admin.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


# --- passwords ---------------------------------------------------------------------------

_hashers: dict[str, PasswordHasher] = {
    # argon2id with the library's defaults verifies in ~150 ms here (FACTS.md): above OWASP's floor.
    "argon2": PasswordHasher(),
    # Tests log in hundreds of times; this keeps the algorithm and makes it cheap.
    "fast": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}
_dummy_hashes: dict[str, str] = {}
MIN_PASSWORD_LENGTH = 12


def _hasher() -> PasswordHasher:
    return _hashers[current_app.config.get("PASSWORD_HASHER", "argon2")]


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher().hash(password)


def check_password(admin: Admin | None, password: str) -> bool:
    """True if `password` is the admin's; costs the same when the admin does not exist."""
    if admin is None:
        # The same hasher as a real account: an unknown name must not answer faster.
        name = current_app.config.get("PASSWORD_HASHER", "argon2")
        dummy = _dummy_hashes.setdefault(name, _hashers[name].hash("no such administrator"))
        with contextlib.suppress(VerificationError):
            _hashers[name].verify(dummy, password)
        return False
    try:
        return _hasher().verify(admin.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password of 16 characters that is easy to copy."""
    return secrets.token_urlsafe(12)


# --- services ----------------------------------------------------------------------------


class AccountError(ValueError):
    """An account operation that cannot be done, with a message for the administrator."""


def normalise_username(username: str) -> str:
    """User names are compared case-insensitively and without surrounding spaces."""
    return username.strip().lower()


def find_admin(s: Session, username: str) -> Admin | None:
    """The admin with this user name, if any."""
    return s.scalars(select(Admin).where(Admin.username == normalise_username(username))).first()


def create_admin(s: Session, username: str, password: str, *, primary: bool = False) -> Admin:
    """Create an administrator; the first one created is always the primary one."""
    name = normalise_username(username)
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise AccountError("A user name is 1-64 letters, digits, dots, dashes, underscores or @.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if find_admin(s, name) is not None:
        raise AccountError(f"An administrator named {name!r} already exists.")
    first = not s.scalar(select(func.count()).select_from(Admin))
    admin = Admin(
        username=name,
        password_hash=hash_password(password),
        is_primary=primary or first,
        created_at=clock.now(),
    )
    s.add(admin)
    s.flush()
    return admin


def set_password(s: Session, admin: Admin, password: str) -> None:
    """Change a password, unlock the account and end every session of it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    admin.password_hash = hash_password(password)
    admin.password_changed_at = clock.now()
    admin.failed_logins = 0
    admin.locked_until = None
    s.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(s: Session, admin: Admin, remote_addr: str | None, user_agent: str | None) -> str:
    """Record a new login session for `admin` and return its token."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    s.add(
        AdminSession(
            id=_token_id(token),
            admin_id=admin.id,
            created_at=now,
            last_seen_at=now,
            remote_addr=remote_addr,
            user_agent=(user_agent or "")[:255],
        )
    )
    admin.session_token = token
    return token


def load_session(s: Session, token: str, idle: timedelta) -> Admin | None:
    """The admin of a live session token; an idle or deleted session gives None."""
    row = s.get(AdminSession, _token_id(token))
    if row is None:
        return None
    now = clock.now()
    if now - row.last_seen_at > idle:
        s.delete(row)
        return None
    if now - row.last_seen_at > timedelta(seconds=60):  # one write a minute, not per request
        row.last_seen_at = now
    admin = s.get(Admin, row.admin_id)
    if admin is not None:
        admin.session_token = token
    return admin


def end_session(s: Session, token: str | None) -> None:
    """Forget a login session."""
    if token:
        s.execute(delete(AdminSession).where(AdminSession.id == _token_id(token)))


def purge_idle_sessions(s: Session, now: datetime, idle: timedelta) -> int:
    """Delete sessions that idled out (a scheduled check)."""
    return s.execute(delete(AdminSession).where(AdminSession.last_seen_at < now - idle)).rowcount


LOCK_ALARM_PREFIX = "shell.login.locked."


def attempt_login(
    s: Session,
    username: str,
    password: str,
    *,
    max_failures: int,
    lock_minutes: int,
    remote_addr: str | None = None,
) -> tuple[Admin | None, str | None]:
    """Check credentials with lock-out; return (admin, None) or (None, message)."""
    admin = find_admin(s, username)
    now = clock.now()
    generic = "The user name or password is not right."
    if admin is not None and admin.locked_until is not None and admin.locked_until > now:
        minutes = max(1, int((admin.locked_until - now).total_seconds() // 60) + 1)
        return None, (
            f"This account is locked after {max_failures} failed logins. "
            f"Try again in {minutes} minute(s), or ask the primary administrator."
        )
    if not check_password(admin, password):
        if admin is None:
            return None, generic
        # One statement each: parallel wrong passwords are all counted (no lost updates).
        failures = s.execute(
            update(Admin)
            .where(Admin.id == admin.id)
            .values(failed_logins=Admin.failed_logins + 1)
            .returning(Admin.failed_logins)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        if failures >= max_failures:
            locked = s.execute(
                update(Admin)
                .where(
                    Admin.id == admin.id,
                    or_(Admin.locked_until.is_(None), Admin.locked_until <= now),
                )
                .values(locked_until=now + timedelta(minutes=lock_minutes), failed_logins=0)
                .returning(Admin.id)
                .execution_options(synchronize_session=False)
            ).first()
            if locked is None:  # a parallel attempt locked it already
                return None, (
                    f"Too many failed logins: this account is locked for {lock_minutes} minutes."
                )
            raise_alarm(
                LOCK_ALARM_PREFIX + admin.username,
                "warning",
                "Login",
                f"Administrator account {admin.username!r} was locked for {lock_minutes} minutes "
                f"after {max_failures} failed logins (last from {remote_addr or 'unknown'}).",
                session=s,
            )
            return None, (
                f"Too many failed logins: this account is locked for {lock_minutes} minutes."
            )
        return None, generic
    admin.failed_logins = 0
    admin.locked_until = None
    admin.last_login_at = now
    clear_alarm(
        LOCK_ALARM_PREFIX + admin.username,
        f"Administrator {admin.username!r} logged in successfully.",
        session=s,
    )
    return admin, None


# --- decorators --------------------------------------------------------------------------


def public(view: Callable) -> Callable:
    """Mark a view as reachable without login (every other view requires it)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def login_required(view: Callable) -> Callable:
    """Require a logged-in administrator (the shell already does this for every non-public view)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def primary_admin_required(view: Callable) -> Callable:
    """Allow a view to the primary administrator only; others get 403."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not current_user.is_primary:
            abort(403, "Only the primary administrator may do this.")
        return view(*args, **kwargs)

    return wrapped


def is_primary_admin() -> bool:
    """True when the logged-in administrator is the primary one (for templates and views)."""
    return bool(current_user.is_authenticated and current_user.is_primary)


def _require_login() -> Any:
    """Default-deny: every endpoint needs a login unless its view is marked public."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # 404/405 handled by Flask
    view = current_app.view_functions.get(endpoint)
    if endpoint == "static" or endpoint.endswith(".static") or getattr(view, "is_public", False):
        return None
    if current_user.is_authenticated:
        return None
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def safe_next(target: str | None) -> str:
    """A same-site path to return to after login, or the home page."""
    if not target:
        return url_for("home")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
    ):
        return url_for("home")
    return target


def init_app(app: Flask) -> None:
    """Set up Flask-Login with database sessions and the default-deny rule."""
    manager = LoginManager()
    manager.session_protection = "strong"
    manager.login_view = "auth.login"
    manager.login_message = "Please log in to continue."
    manager.login_message_category = "info"

    @manager.user_loader
    def _load(token: str) -> Admin | None:
        idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
        return load_session(get_session(), token, idle)

    manager.init_app(app)
    app.before_request(_require_login)
    app.register_blueprint(bp)


# --- pages -------------------------------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The login form; five failures in a row lock the account (warning alarm)."""
    from .forms import LoginForm

    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        s = get_session()
        admin, error = attempt_login(
            s,
            form.username.data,
            form.password.data,
            max_failures=current_app.config["LOGIN_MAX_FAILURES"],
            lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"],
            remote_addr=request.remote_addr,
        )
        if admin is not None:
            session.clear()
            start_session(s, admin, request.remote_addr, request.user_agent.string)
            session.permanent = True
            login_user(admin)
            return redirect(safe_next(request.args.get("next")), 303)
    # A failed attempt is still committed (its counter must persist): answer 200, not 4xx.
    return render_template("shell/login.html", form=form, error=error)


@bp.post("/logout")
def logout():
    """End this session everywhere it could be replayed from."""
    end_session(get_session(), current_user.get_id())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    """Change the logged-in administrator's own password; other sessions end."""
    from .forms import ChangePasswordForm

    form = ChangePasswordForm()
    if form.validate_on_submit():
        s = get_session()
        admin = s.get(Admin, current_user.id)
        if not check_password(admin, form.current_password.data):
            form.current_password.errors.append("This is not your current password.")
        else:
            set_password(s, admin, form.new_password.data)
            start_session(s, admin, request.remote_addr, request.user_agent.string)
            login_user(admin)
            flash("Your password is changed. Your other sessions have been logged out.", "success")
            return redirect(url_for("home"), 303)
    return render_template("shell/change_password.html", form=form), 422 if form.errors else 200
