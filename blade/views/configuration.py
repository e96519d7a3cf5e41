"""Configuration tab: Connections to MBGs (create, authorise, re-authenticate, delete)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from server_manager_stub import clock
from server_manager_stub.auth import primary_admin_required
from server_manager_stub.db import get_session

from .. import mbg
from ..forms.configuration import MbgConnectionForm, VerifierForm
from ..mbg_client import MbgError
from ..models import MbgConnection
from . import bp


def _callback_url() -> str:
    return url_for(".mbg_callback", _external=True)


@bp.get("/configuration")
def configuration():
    """The Configuration tab."""
    s = get_session()
    return render_template(
        "blade/configuration.html", connections=mbg.list_connections(s), now=clock.now()
    )


@bp.route("/configuration/mbg/new", methods=["GET", "POST"])
@primary_admin_required
def mbg_new():
    """Create new connection; 'Save and send AuthRequest' stores it and asks the MBG."""
    s = get_session()
    form = MbgConnectionForm(session=s)
    if form.validate_on_submit():
        connection = mbg.create_connection(s, form.name.data, form.host.data)
        try:
            mbg.request_authorization(connection, current_app.config, _callback_url())
        except MbgError as exc:
            flash(f"The connection is saved but not authorized: {exc}", "error")
        else:
            flash(
                f"Connection {connection.name!r} saved and the AuthRequest sent (Token ID "
                f"{connection.token_id}). Approve it on the MBG now.",
                "success",
            )
        return redirect(url_for(".mbg_show", connection_id=connection.id), 303)
    return render_template("blade/mbg_new.html", form=form), 422 if form.errors else 200


@bp.get("/configuration/mbg/<int:connection_id>")
def mbg_show(connection_id: int):
    """One connection: its state and the steps to authorise it."""
    s = get_session()
    connection = s.get(MbgConnection, connection_id) or abort(404)
    return render_template(
        "blade/mbg_show.html",
        connection=connection,
        form=VerifierForm(),
        now=clock.now(),
        profiles=mbg.profiles_using(s, connection),
    )


@bp.post("/configuration/mbg/<int:connection_id>/authenticate")
@primary_admin_required
def mbg_authenticate(connection_id: int):
    """Send a new AuthRequest (for an unverified or expiring connection)."""
    connection = get_session().get(MbgConnection, connection_id) or abort(404)
    try:
        mbg.request_authorization(connection, current_app.config, _callback_url())
    except MbgError as exc:
        flash(str(exc), "error")
    else:
        flash(
            f"AuthRequest sent (Token ID {connection.token_id}). Approve it on the MBG.", "success"
        )
    return redirect(url_for(".mbg_show", connection_id=connection.id), 303)


@bp.post("/configuration/mbg/<int:connection_id>/verifier")
@primary_admin_required
def mbg_verifier(connection_id: int):
    """Complete the authorisation with a pasted verifier."""
    s = get_session()
    connection = s.get(MbgConnection, connection_id) or abort(404)
    form = VerifierForm()
    if not form.validate_on_submit():
        return render_template(
            "blade/mbg_show.html",
            connection=connection,
            form=form,
            now=clock.now(),
            profiles=mbg.profiles_using(s, connection),
        ), 422
    try:
        mbg.complete_authorization(s, connection, form.verifier.data, current_app.config)
    except MbgError as exc:
        flash(str(exc), "error")
    else:
        flash(
            f"Connection {connection.name!r} is verified until {connection.expires_at:%Y-%m-%d}.",
            "success",
        )
    return redirect(url_for(".mbg_show", connection_id=connection.id), 303)


@bp.get("/configuration/mbg/callback")
@primary_admin_required
def mbg_callback():
    """Where the MBG's approval page sends the administrator's browser back, with the verifier."""
    s = get_session()
    connection = mbg.find_by_token(s, request.args.get("token_id", "")) or abort(
        404, "No connection waits for this authorization request; start again with Authenticate."
    )
    error = None
    try:
        mbg.complete_authorization(
            s, connection, request.args.get("verifier", ""), current_app.config
        )
    except MbgError as exc:
        error = str(exc)
    return render_template("blade/mbg_callback.html", connection=connection, error=error)


@bp.post("/configuration/mbg/<int:connection_id>/delete")
@primary_admin_required
def mbg_delete(connection_id: int):
    """Delete a connection that no profile uses."""
    s = get_session()
    connection = s.get(MbgConnection, connection_id) or abort(404)
    try:
        mbg.delete_connection(s, connection)
    except mbg.ConnectionInUse as exc:
        flash(str(exc), "error")
        return redirect(url_for(".mbg_show", connection_id=connection.id), 303)
    flash(f"Connection {connection.name!r} deleted.", "success")
    return redirect(url_for(".configuration"), 303)
