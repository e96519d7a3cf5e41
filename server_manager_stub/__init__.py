"""The server-manager shell: create_app() wires config, database, login, blades and pages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import auth, clock, config, db, events, outbox, outbox_pages, scheduler, secrets
from .blades import Blade, MenuItem, ScheduledCheck, discover, menu_sections
from .migrate import schema_problem
from .validators import MAX_ID, wrapper_attrs

__all__ = ["Blade", "MenuItem", "ScheduledCheck", "create_app", "csrf_exempt", "scheduler"]

log = logging.getLogger(__name__)
csrf = CSRFProtect()
# For public endpoints called by programs (no browser session, no CSRF token to send).
csrf_exempt = csrf.exempt

SHELL_MENU = [
    MenuItem("Event Viewer", "events.index", "Administration"),
    MenuItem("Outbox", "outbox.index", "Administration"),
    MenuItem("Administrators", "admins.index", "Security"),
    MenuItem("Change password", "auth.change_password", "Security"),
]


class _IdConverter(IntegerConverter):
    """<int:…> in every route of the shell and its blades: at most 2**31-1, so that a huge
    number in a URL is a 404 and not a database overflow."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


class _SessionInterface(SecureCookieSessionInterface):
    """Session cookies are Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))


def _shell_checks() -> list[ScheduledCheck]:
    def purge_outbox(s, now, app):
        outbox.purge_sent(s, now, app.config["OUTBOX_RETENTION_DAYS"])

    def purge_sessions(s, now, app):
        auth.purge_idle_sessions(s, now, timedelta(minutes=app.config["SESSION_IDLE_MINUTES"]))

    def outbox_alarm(s, now, app):
        outbox.refresh_failure_alarm(s)

    return [
        ScheduledCheck("shell.purge_outbox", purge_outbox, 3600),
        ScheduledCheck("shell.purge_sessions", purge_sessions, 3600),
        ScheduledCheck("shell.outbox_alarm", outbox_alarm),
    ]


def _report_blade_errors(app: Flask) -> None:
    """Raise an alarm for each refused blade; clear those of blades that load again."""
    database = db.get_db(app)
    with app.app_context(), database.transaction() as s:
        for err in app.extensions["sm_blade_errors"]:
            events.raise_alarm(
                f"shell.blade.{err.entry_point}",
                "major",
                "Blades",
                f"The blade {err.entry_point!r} was not loaded: {err.reason}. "
                "The rest of the server manager works without it.",
                session=s,
            )
        refused = {f"shell.blade.{e.entry_point}" for e in app.extensions["sm_blade_errors"]}
        for key in events.active_alarm_keys("shell.blade.", session=s):
            if key not in refused:
                events.clear_alarm(key, "The blade loads again.", session=s)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the server-manager app; `overrides` take precedence over the environment."""
    app = Flask(__name__)
    app.url_map.converters["int"] = _IdConverter
    settings = config.load(overrides, default_instance=app.instance_path)
    app.config.update(settings)
    app.instance_path = settings["SM_INSTANCE_DIR"]
    logging.basicConfig(
        level=settings["LOG_LEVEL"].upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic's per-connection chatter says nothing an administrator needs; upgrades still log.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="sm_session",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings["SESSION_IDLE_MINUTES"]),
        MAX_CONTENT_LENGTH=settings["MAX_UPLOAD_MB"] * 1024 * 1024,
        # A form may stay open longer than an hour; the session's idle limit bounds the token.
        WTF_CSRF_TIME_LIMIT=None,
        REMEMBER_COOKIE_SECURE=True,
        REMEMBER_COOKIE_HTTPONLY=True,
    )
    app.config.setdefault("SESSION_COOKIE_SECURE", False)
    app.session_interface = _SessionInterface()
    if settings["TRUSTED_PROXIES"]:
        n = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)

    secrets.configure(settings["SM_SECRET_KEYS"])
    db.init_app(app)
    app.before_request(_schema_gate)  # first: nothing else may touch an unmigrated database
    app.before_request(_refuse_nul_characters)
    auth.init_app(app)  # before CSRF: an anonymous request is sent to login, not refused
    csrf.init_app(app)
    app.register_blueprint(events.bp)
    app.register_blueprint(outbox_pages.bp)
    from . import admins

    app.register_blueprint(admins.bp)

    blades, errors = discover(settings["SM_BLADES"])
    loaded = []
    for blade in blades:
        # A blade's settings are read like the shell's; a bad value stops the start like one.
        app.config.update(config.read(blade.settings(), dict(overrides or {})))
        try:
            for blueprint in blade.blueprints():
                app.register_blueprint(blueprint)
            blade.init_app(app)
        except Exception as exc:
            log.exception("blade %s failed to register", blade.name)
            errors.append(config_error(blade.name, exc))
            continue
        loaded.append(blade)
    app.extensions["sm_blades"] = loaded
    app.extensions["sm_blade_errors"] = errors
    app.extensions["sm_shell_checks"] = _shell_checks()
    app.extensions["sm_menu"] = menu_sections(loaded, SHELL_MENU)

    _register_pages(app)
    problem = None if settings.get("SM_SKIP_SCHEMA_CHECK") else schema_problem(app)
    app.extensions["sm_schema_problem"] = problem
    if problem:
        log.error("%s", problem)
    elif not settings.get("SM_SKIP_SCHEMA_CHECK"):
        _report_blade_errors(app)
    return app


def config_error(name: str, exc: Exception):
    """A LoadError for a blade that imported but could not register."""
    from .blades import LoadError

    return LoadError(name, f"it failed to register: {type(exc).__name__}: {exc}")


def _schema_gate():
    """Answer 503 with what to run while the database is not at the code's revision."""
    from flask import current_app

    problem = current_app.extensions.get("sm_schema_problem")
    if problem and request.endpoint != "static":
        return render_template("shell/unavailable.html", problem=problem), 503
    return None


def _refuse_nul_characters():
    """No person types a NUL character, and PostgreSQL cannot store one: refuse the request."""
    values = [*request.args.values(), *(request.form.values() if request.form else ())]
    if any("\x00" in v for v in values):
        return render_template(
            "shell/error.html",
            code=400,
            title="The form could not be accepted",
            message="The request contains a NUL character, which no field accepts. Nothing was "
            "changed.",
        ), 400
    return None


def _register_pages(app: Flask) -> None:
    @app.get("/")
    def home():
        s = db.get_session()
        counts = dict(
            s.execute(
                select(events.Alarm.severity, func.count())
                .where(events.Alarm.severity != "cleared")
                .group_by(events.Alarm.severity)
            ).all()
        )
        return render_template("shell/home.html", counts=counts, blades=app.extensions["sm_blades"])

    @app.get("/healthz")
    @auth.public
    def healthz():
        return {"status": "ok"}

    @app.context_processor
    def _shell_context():
        return {
            "server_name": app.config["SERVER_FQDN"],
            "menu": app.extensions["sm_menu"],
            "is_primary_admin": auth.is_primary_admin(),
            "current_user": current_user,
            "now": clock.now,
        }

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'",
        )
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return render_template(
            "shell/error.html",
            code=400,
            title="The form could not be accepted",
            message="The form was not sent from this site or your session ended. Go back, "
            "reload the page and submit it again.",
        ), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        titles = {
            403: "Not allowed",
            404: "Page not found",
            405: "Not allowed here",
            413: "Upload too large",
        }
        message = exc.description
        if exc.code == 413:
            message = (
                f"The upload is larger than the limit of {app.config['MAX_UPLOAD_MB']} MB "
                "(MAX_UPLOAD_MB). Nothing was changed."
            )
        return render_template(
            "shell/error.html", code=exc.code, title=titles.get(exc.code, exc.name), message=message
        ), exc.code

    @app.errorhandler(Exception)
    def _server_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_template(
            "shell/error.html",
            code=500,
            title="Something went wrong",
            message="The server could not complete this request and changed nothing. "
            "The details are in the server log.",
        ), 500

    app.jinja_env.globals["url_for_page"] = _url_for_page
    app.jinja_env.globals["wrapper_attrs"] = wrapper_attrs


def _url_for_page(**changes: Any) -> str:
    """The current URL with some query arguments changed (for paging and filters)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        args.pop(k, None)
    return url_for(request.endpoint, **(request.view_args or {}), **args)
