"""Users tab: Manage (search, sort, page, bulk actions), Create/Modify, Import Users, CSV."""

from __future__ import annotations

import io
import json

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from server_manager_stub import clock
from server_manager_stub.db import get_session
from server_manager_stub.validators import whole_number

from .. import csv_io, deploy, mbg, sources
from ..forms.users import UserForm, number_warning
from ..forms.users_bulk import CsvImportForm, RecordImportForm
from ..mbg_client import MbgError
from ..models import DOWNLOAD_OUTCOMES, CsvImportRecord, DeploymentUser, MbgConnection, Profile
from ..profiles import list_profiles
from ..users import (
    PAGE_SIZES,
    SORTS,
    ListArgs,
    Selection,
    UserError,
    count_selected,
    create_user,
    delete_selected,
    generate_pin,
    iter_selected,
    list_page,
    update_user,
)
from . import bp

ACTIONS = {
    "sync": "Sync data",
    "auto_deploy": "Auto deploy",
    "deploy": "Deploy",
    "force_config": "Set Force Config",
    "export": "Export (CSV)",
    "delete": "Delete",
}
DONE_LABELS = {
    "sync": "updated from their source",
    "deploy": "deployed (e-mail queued)",
    "auto_deploy": "deployed or marked for a forced configuration",
    "force_config": "marked: their client downloads its configuration at its next check",
}


def _profile_choices(s) -> list[tuple[int, str]]:
    return [(p.id, p.name) for p in list_profiles(s)]


@bp.get("/")
def users():
    """The Users tab's Manage view."""
    s = get_session()
    page = list_page(s, ListArgs.from_args(request.args))
    return render_template(
        "blade/users.html",
        page=page,
        sorts=SORTS,
        sizes=PAGE_SIZES,
        actions=ACTIONS,
        form=FlaskForm(),
    )


# --- bulk actions ---------------------------------------------------------------------------


@bp.post("/users/action")
def users_action():
    """Run an action on the selection (rows, the page, or all matching rows but some)."""
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    s = get_session()
    selection = Selection.from_form(request.form, request.form.getlist)
    action = request.form.get("action", "")
    back = url_for(".users", q=selection.q or None)
    if action not in ACTIONS:
        flash("Choose an action.", "error")
        return redirect(back, 303)
    if selection.is_empty():
        flash("Select users first: tick rows, or Select all.", "error")
        return redirect(back, 303)
    if action == "export":
        return _export(s, selection)
    if action == "delete" and request.form.get("confirmed") != "1":
        return render_template(
            "blade/users_confirm.html",
            form=form,
            selection=selection,
            count=count_selected(s, selection),
            action=action,
            label=ACTIONS[action],
        )
    if action == "delete":
        deleted = delete_selected(s, selection)
        flash(f"Deleted {deleted} user(s) and what was deployed for them.", "success")
        return redirect(back, 303)
    outcome = sources.Outcome()
    work = {
        "sync": lambda users: sources.sync_users(s, users, current_app.config, outcome),
        "deploy": lambda users: deploy.deploy_users(s, users, current_app.config, outcome),
        "auto_deploy": lambda users: deploy.auto_deploy(s, users, current_app.config, outcome),
        "force_config": lambda users: deploy.set_force_config(s, users, outcome),
    }[action]
    for users in iter_selected(s, selection, batch=2000):
        work(users)
        s.flush()  # write what the batch changed before letting go of its objects
        s.expunge_all()  # loaded users are not kept: memory stays flat on large selections
    return render_template(
        "blade/users_outcome.html",
        title=ACTIONS[action],
        outcome=outcome,
        done_label=DONE_LABELS[action],
        skipped_label="not imported from a source (nothing to synchronise)",
    )


def _export(s, selection: Selection) -> Response:
    profiles = dict(s.execute(select(Profile.id, Profile.name)).all())
    out = io.StringIO()

    def selected():
        for batch in iter_selected(s, selection, batch=2000):
            yield from batch
            s.expunge_all()  # loaded users are not kept around

    csv_io.write_csv(csv_io.export_rows(selected(), profiles), out)
    stamp = clock.now().strftime("%Y%m%d-%H%M")
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="client-deployment-users-{stamp}.csv"'
        },
    )


# --- create / modify ------------------------------------------------------------------------


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    """Create New User."""
    s = get_session()
    default = s.scalar(select(Profile.id).where(Profile.is_default))
    form = UserForm(
        data={"profile_id": str(default)} if request.method == "GET" else None,
        profiles=_profile_choices(s),
    )
    if form.validate_on_submit():
        user = create_user(s, form.values())
        flash(f"User {user.first_name} {user.last_name} created.", "success")
        warning = number_warning(user.directory_number)
        if warning:
            flash(warning, "warning")
        return redirect(url_for(".user_edit", user_id=user.id), 303)
    return render_template(
        "blade/user_form.html", form=form, user=None, hosts=_profile_hosts(s, form.profile_id.data)
    ), 422 if form.errors else 200


def _profile_hosts(s, profile_id) -> dict[str, str]:
    """MBG SIP host and MBG-WebRTC SIP host as the profile sets them (shown read-only)."""
    number = whole_number(profile_id)
    profile = s.get(Profile, number) if number is not None else None
    if profile is None:
        return {"mbg": "—", "webrtc": "—"}
    fqdn = mbg.mbg_fqdn(s, profile) or "the MBG's FQDN (no MBG chosen)"
    if not profile.teleworker_on:
        sip = "not used (Use Teleworker is off)"
    elif profile.mbg_sip_host == "mbg_fqdn":
        sip = fqdn
    else:
        sip = profile.mbg_sip_host_custom or "—"
    webrtc = fqdn if profile.webrtc_sip_host == "mbg_fqdn" else profile.webrtc_sip_host_custom
    return {"mbg": sip, "webrtc": webrtc or "—"}


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    """Modify a user; imported users are shown read-only and refuse changes."""
    s = get_session()
    user = s.get(DeploymentUser, user_id) or abort(404)
    if request.method == "POST" and user.imported:
        return _read_only(
            s,
            user,
            status=403,
            error="This user was imported and cannot be modified here: change it "
            "at its source, then use Sync data. Nothing was changed.",
        )
    data = None
    if request.method == "GET":
        data = {
            f: getattr(user, f)
            for f in (
                "first_name",
                "last_name",
                "directory_number",
                "email",
                "pbx_sip_host",
                "pbx_sip_username",
                "mbg_sip_username",
                "mcs_host",
                "mcs_username",
            )
        }
        data["profile_id"] = str(user.profile_id)
    if user.imported:
        return _read_only(s, user)
    form = UserForm(data=data, profiles=_profile_choices(s))
    if form.validate_on_submit():
        try:
            warnings = update_user(s, user, form.values())
        except UserError as exc:
            abort(403, str(exc))
        flash(f"User {user.first_name} {user.last_name} saved.", "success")
        for warning in [*warnings, number_warning(user.directory_number)]:
            if warning:
                flash(warning, "warning")
        return redirect(url_for(".user_edit", user_id=user.id), 303)
    return render_template(
        "blade/user_form.html",
        form=form,
        user=user,
        hosts=_profile_hosts(s, form.profile_id.data),
        **_deployment_context(s, user),
    ), 422 if form.errors else 200


def _read_only(s, user: DeploymentUser, status: int = 200, error: str | None = None):
    connection = (
        s.get(MbgConnection, user.source_connection_id) if user.source_connection_id else None
    )
    profile = s.get(Profile, user.profile_id)
    return render_template(
        "blade/user_readonly.html",
        user=user,
        connection=connection,
        profile=profile,
        error=error,
        form=FlaskForm(),
        hosts=_profile_hosts(s, user.profile_id),
        **_deployment_context(s, user),
    ), status


def _deployment_context(s, user: DeploymentUser) -> dict:
    """The user's deployment and download log, for the user's page."""
    deployment, log = deploy.deployment_status(s, user.id)
    return {
        "deployment": deployment,
        "log": log,
        "outcomes": dict(DOWNLOAD_OUTCOMES),
        "now": clock.now(),
    }


def _manual_user(user_id: int) -> DeploymentUser:
    """A user whose deployment settings may change here (imported ones are read-only)."""
    user = get_session().get(DeploymentUser, user_id) or abort(404)
    if user.imported:
        abort(403, "This user was imported and cannot be modified here.")
    return user


@bp.post("/users/<int:user_id>/pin")
def user_pin(user_id: int):
    """Generate a new Deployment PIN, store it and show it once."""
    user = _manual_user(user_id)
    pin = generate_pin()
    user.deployment_pin = pin
    user.updated_at = clock.now()
    return render_template("blade/user_pin.html", user=user, pin=pin, generated=True)


@bp.post("/users/<int:user_id>/pin/remove")
def user_pin_remove(user_id: int):
    """Remove the Deployment PIN: the next download asks for none."""
    user = _manual_user(user_id)
    user.deployment_pin = None
    user.updated_at = clock.now()
    flash("The Deployment PIN is removed; downloads no longer ask for one.", "success")
    return redirect(url_for(".user_edit", user_id=user.id), 303)


@bp.post("/users/<int:user_id>/pin/show")
def user_pin_show(user_id: int):
    """Show the stored Deployment PIN to the administrator who asks for it."""
    user = get_session().get(DeploymentUser, user_id) or abort(404)
    return render_template(
        "blade/user_pin.html", user=user, pin=user.deployment_pin, generated=False
    )


# --- Import Users (from MBGs) ---------------------------------------------------------------


@bp.route("/users/import", methods=["GET", "POST"])
def users_import():
    """Records of the verified MBG connections, paged, to import with a profile."""
    s = get_session()
    now = clock.now()
    connections = [c for c in mbg.list_connections(s) if c.is_usable(now)]
    chosen = request.values.get("connection", "")
    connection = next(
        (c for c in connections if str(c.id) == chosen), connections[0] if connections else None
    )
    form = RecordImportForm(profiles=_profile_choices(s))
    if request.method == "POST" and connection is not None and form.validate_on_submit():
        select_all = request.form.get("select_all") == "1"
        ids = request.form.getlist("record_ids")
        if not select_all and not ids:
            flash("Select records first: tick rows, or Select all.", "error")
        else:
            try:
                outcome = sources.import_records(
                    s,
                    connection,
                    current_app.config,
                    profile_id=int(form.profile_id.data),
                    record_ids=None if select_all else ids,
                    excluded=request.form.getlist("excluded") if select_all else (),
                )
            except MbgError as exc:
                flash(str(exc), "error")
            else:
                title, label = "Import Users", "imported"
                if request.form.get("and_deploy") == "1" and outcome.user_ids:
                    imported = list(
                        s.scalars(
                            select(DeploymentUser).where(DeploymentUser.id.in_(outcome.user_ids))
                        )
                    )
                    deployed = deploy.deploy_users(s, imported, current_app.config)
                    outcome.failures.extend(deployed.failures)
                    title = "Import and Deploy"
                    label = f"imported, {deployed.done} of them deployed (e-mail queued)"
                return render_template(
                    "blade/users_outcome.html",
                    title=title,
                    outcome=outcome,
                    done_label=label,
                    skipped_label="already imported (not duplicated)",
                )
    records, total, error = [], 0, None
    args = ListArgs.from_args(request.args)
    if connection is not None:
        try:
            data = mbg.client_for(connection, current_app.config).user_page(
                connection.access_token, args.page, args.size
            )
            records, total = data.get("users") or [], int(data.get("total") or 0)
        except MbgError as exc:
            error = str(exc)
    imported = (
        sources.imported_record_ids(s, connection.id, [str(r.get("id")) for r in records])
        if connection
        else set()
    )
    return render_template(
        "blade/users_import.html",
        connections=connections,
        connection=connection,
        records=records,
        total=total,
        args=args,
        pages=max(1, -(-total // args.size)),
        imported=imported,
        form=form,
        error=error,
        sizes=PAGE_SIZES,
    )


# --- CSV ------------------------------------------------------------------------------------


@bp.get("/users/csv/template")
def users_csv_template():
    """The CSV template: every column and one example user."""
    out = io.StringIO()
    csv_io.write_csv(csv_io.template_rows(), out)
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="client-deployment-users-template.csv"'
        },
    )


@bp.route("/users/csv", methods=["GET", "POST"])
def users_csv():
    """Import users from a CSV file."""
    s = get_session()
    form = CsvImportForm(profiles=_profile_choices(s))
    if not form.validate_on_submit():
        return render_template("blade/users_csv.html", form=form), 422 if form.errors else 200
    upload = form.file.data
    profile_id = None if form.profile.data == "csv" else int(form.profile.data)
    try:
        result = csv_io.import_csv(
            s,
            upload.stream,
            profile_id=profile_id,
            partial=form.partial.data,
            overwrite=form.overwrite.data,
        )
    except csv_io.CsvFileError as exc:
        s.rollback()  # a file refused as a whole changes nothing
        form.file.errors.append(str(exc))
        return render_template("blade/users_csv.html", form=form), 422
    except csv_io.ImportRejected as rejected:
        s.rollback()  # all or nothing: the rows written before the bad one go too
        result = rejected.result
    record = CsvImportRecord(
        created_at=clock.now(),
        created_by=current_user.username,
        filename=(upload.filename or "upload.csv")[:255],
        rejected_csv=result.rejected_csv,
        summary=json.dumps(
            {
                "created": result.created,
                "updated": result.updated,
                "rejected": result.rejected,
                "applied": result.applied,
                "partial": form.partial.data,
                "overwrite": form.overwrite.data,
                "errors": [[p.line, p.message] for p in result.errors],
                "warnings": [[p.line, p.message] for p in result.warnings],
                "file_warnings": result.file_warnings,
            }
        ),
    )
    s.add(record)
    s.flush()
    return redirect(url_for(".users_csv_result", result_id=record.id), 303)


@bp.get("/users/csv/results/<int:result_id>")
def users_csv_result(result_id: int):
    """What an import did, with every rejected row's line and reason."""
    record = get_session().get(CsvImportRecord, result_id) or abort(404)
    return render_template(
        "blade/csv_result.html", record=record, summary=json.loads(record.summary)
    )


@bp.get("/users/csv/results/<int:result_id>/rejected.csv")
def users_csv_rejected(result_id: int):
    """The rejected rows, to fix and import again."""
    record = get_session().get(CsvImportRecord, result_id) or abort(404)
    if not record.rejected_csv:
        abort(404)
    return Response(
        record.rejected_csv,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rejected-rows-{record.id}.csv"'},
    )
