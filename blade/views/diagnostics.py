"""Diagnostics tab."""

from flask import render_template

from . import bp


@bp.get("/diagnostics")
def diagnostics():
    """The Diagnostics tab."""
    return render_template("blade/tab_pending.html", tab="diagnostics", title="Diagnostics")
