"""Deployment Profiles tab."""

from flask import render_template

from . import bp


@bp.get("/profiles")
def profiles():
    """The Deployment Profiles tab."""
    return render_template("blade/tab_pending.html", tab="profiles", title="Deployment Profiles")
