"""Configuration tab: Connections to MBGs (create, authorise, re-authenticate, delete)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from server_manager_stub import clock
from server_manager_stub.auth import primary_admin_required
from server_manager_stub.db import get_session

from .. import mail, mbg
from ..forms.configuration import EmailTemplateForm, MbgConnectionForm, VerifierForm
from ..mbg_client import MbgError
from ..models import MbgConnection
from . import bp


def _callback_url() -> str:
    return url_for(".mbg_callback", _external=True)


@bp.get("/configuration")
def configuration():
    """The Configuration tab."""
    s = get_session()
    template = mail.current(s)
    customised = template.body != mail.DEFAULT_BODY or template.subject != mail.DEFAULT_SUBJECT
    return render_template(
        "blade/configuration.html",
        connections=mbg.list_connections(s),
        now=clock.now(),
        template=template,
        customised=customised,
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


# --- Mobile Client deployment e-mail --------------------------------------------------------

SAMPLE = {
    "first_name": "Anna",
    "last_name": "Becker <Sales>",
    "dn": "4041",
    "link": "https://deploy.example.com/client-deployment/d/SAMPLE-LINK-TOKEN",
    "auth_token": "7KQ2M-X9D4T",
}


def _preview(form: EmailTemplateForm) -> dict:
    """The e-mail for a sample user, with its QR code inline (a data: URI)."""
    import base64

    template = mail.Template(
        form.subject.data or mail.DEFAULT_SUBJECT, form.body.data or mail.DEFAULT_BODY, _links(form)
    )
    rendered = mail.render(mail.render_args(template, **SAMPLE))
    qr = base64.b64encode(rendered.inline[0].data).decode()
    html = rendered.html.replace('src="cid:qrcode"', f'src="data:image/png;base64,{qr}"')
    body = html.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0]
    return {"subject": rendered.subject, "html": body, "text": rendered.text}


def _links(form: EmailTemplateForm) -> dict[str, str]:
    return {
        key: form[f"link_{key}"].data or default for key, (_, default) in mail.STORE_LINKS.items()
    }


@bp.route("/configuration/email", methods=["GET", "POST"])
def email_template():
    """Mobile Client deployment e-mail: subject, body, store links; preview; default text."""
    from markupsafe import Markup

    s = get_session()
    current = mail.current(s)
    data = None
    if request.method == "GET":
        data = {
            "subject": current.subject,
            "body": current.body,
            **{f"link_{k}": v for k, v in current.links.items()},
        }
    form = EmailTemplateForm(data=data)
    preview = None
    if request.method == "POST" and request.form.get("load_default"):
        # Fills the editor only; nothing is saved (CSRF was checked for every POST already).
        form.subject.data, form.body.data = mail.DEFAULT_SUBJECT, mail.DEFAULT_BODY
        flash("The default text is loaded into the editor; Save to use it.", "info")
    elif form.validate_on_submit():
        if request.form.get("preview"):
            preview = _preview(form)
        else:
            mail.save(s, form.subject.data or "", form.body.data or "", _links(form))
            flash("The deployment e-mail is saved; deployments from now on use it.", "success")
            return redirect(url_for(".email_template"), 303)
    if preview:
        # Composed by mail.render, which escapes the template text and every user value.
        preview["html"] = Markup(preview["html"])  # noqa: S704
    return render_template(
        "blade/email_template.html",
        form=form,
        preview=preview,
        subject_placeholders=mail.SUBJECT_PLACEHOLDERS,
        body_placeholders=mail.BODY_PLACEHOLDERS,
    ), 422 if form.errors else 200
