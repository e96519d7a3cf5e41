"""Administrators page: the primary administrator adds, unlocks and removes accounts."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from .auth import AccountError, Admin, create_admin, generate_password, primary_admin_required
from .db import get_session

bp = Blueprint("admins", __name__, url_prefix="/admins")


@bp.get("/")
def index():
    """Every administrator account; changes are for the primary administrator."""
    from .forms import AdminCreateForm

    admins = get_session().scalars(select(Admin).order_by(Admin.username)).all()
    return render_template("shell/admins.html", admins=admins, form=AdminCreateForm())


@bp.post("/")
@primary_admin_required
def create():
    """Add an administrator with a generated password shown once."""
    from .forms import AdminCreateForm

    s = get_session()
    form = AdminCreateForm()
    if form.validate_on_submit():
        password = generate_password()
        try:
            admin = create_admin(s, form.username.data, password, primary=form.is_primary.data)
        except AccountError as exc:
            form.username.errors.append(str(exc))
        else:
            return render_template("shell/admin_created.html", admin=admin, password=password)
    admins = s.scalars(select(Admin).order_by(Admin.username)).all()
    return render_template("shell/admins.html", admins=admins, form=form), 422


@bp.post("/<int:admin_id>/unlock")
@primary_admin_required
def unlock(admin_id: int):
    """Lift a login lock-out before it runs out."""
    admin = get_session().get(Admin, admin_id) or abort(404)
    admin.locked_until = None
    admin.failed_logins = 0
    flash(f"{admin.username} can log in again.", "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:admin_id>/delete")
@primary_admin_required
def delete(admin_id: int):
    """Remove an account (not one's own, and never the last primary administrator)."""
    s = get_session()
    admin = s.get(Admin, admin_id) or abort(404)
    if admin.id == current_user.id:
        flash("You cannot delete your own account.", "error")
        return redirect(url_for(".index"), 303)
    if (
        admin.is_primary
        and s.scalar(select(Admin.id).where(Admin.is_primary, Admin.id != admin.id).limit(1))
        is None
    ):
        flash("This is the only primary administrator; it cannot be deleted.", "error")
        return redirect(url_for(".index"), 303)
    s.delete(admin)
    flash(f"Administrator {admin.username} deleted; their sessions ended.", "success")
    return redirect(url_for(".index"), 303)
