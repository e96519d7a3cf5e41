"""Configuration tab."""

from flask import render_template

from . import bp


@bp.get("/configuration")
def configuration():
    """The Configuration tab."""
    return render_template("blade/tab_pending.html", tab="configuration", title="Configuration")
