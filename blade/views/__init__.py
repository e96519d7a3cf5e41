"""The blade's blueprint; each tab's views live in a module of their own."""

from flask import Blueprint

bp = Blueprint(
    "client_deployment",
    __name__,
    url_prefix="/client-deployment",
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)

from . import configuration, diagnostics, profiles, public, users  # noqa: E402, F401
