"""Users tab."""

from flask import render_template

from . import bp


@bp.get("/")
def users():
    """The Users tab."""
    return render_template("blade/tab_pending.html", tab="users", title="Users")
