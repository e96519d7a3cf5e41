"""What clients and users reach without an administrator login (docs/client-api.md).

A link opened in a browser (or by a mail scanner) only shows a page: a download is always an
explicit request. Invalid, expired, used-up and locked deployments get one and the same answer;
the reason goes to the download log on the user's page."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, jsonify, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField

from server_manager_stub import clock, csrf_exempt
from server_manager_stub.auth import public
from server_manager_stub.db import get_session, keep_changes_on_refusal

from .. import deploy
from ..client_config import document
from ..models import Deployment, DeploymentUser, Profile
from . import bp

NOT_AVAILABLE = (
    "This deployment is not available: the link or token is wrong, has expired, has "
    "been used up or replaced by a newer one. Ask your administrator to deploy you "
    "again."
)


class PinForm(FlaskForm):
    """The PIN asked before a download to this computer."""

    pin = PasswordField("Deployment PIN")


def _private(response: Response) -> Response:
    """Links carry secrets: no caching, no Referer to other sites."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _log(s, user_id: int | None, outcome: str, now) -> None:
    deploy.log_attempt(
        s,
        user_id=user_id,
        outcome=outcome,
        remote_addr=request.remote_addr,
        user_agent=request.user_agent.string,
        now=now,
    )


def _redeem(s, deployment: Deployment | None, pin: str | None) -> dict[str, Any]:
    """Check, ask for the PIN, use up a download, build the document; or raise Refused."""
    now = clock.now()
    settings = deploy.LinkSettings.from_config(current_app.config)
    deployment = deploy.check(s, deployment, now)
    user = s.get(DeploymentUser, deployment.user_id)
    deploy.check_pin(s, deployment, user, pin, settings, now, request.remote_addr or "")
    if not deploy.take_download(s, deployment, now):
        raise deploy.Refused("used_up", user.id)  # another request took the last one
    s.refresh(deployment)
    profile = s.get(Profile, user.profile_id)
    credential = deploy.issue_client_credential(user)
    user.downloaded_at = now
    user.force_config = False
    _log(s, user.id, "downloaded", now)
    return document(
        s,
        user,
        profile,
        credential=credential,
        base_url=settings.base(profile),
        deployment=deployment,
        now=now,
    )


def _refused_json(s, refused: deploy.Refused) -> Response:
    _log(s, refused.user_id, refused.outcome, clock.now())
    keep_changes_on_refusal()  # the log line and the PIN counter must stay
    if refused.outcome == "pin_required":
        response = jsonify(
            error="pin_required", message="Enter the Deployment PIN your administrator gave you."
        )
        response.status_code = 401
    elif refused.outcome == "pin_wrong":
        response = jsonify(
            error="pin_incorrect",
            tries_left=refused.tries_left,
            message=f"The PIN is not right. {refused.tries_left} tries left.",
        )
        response.status_code = 401
    else:
        response = jsonify(error="not_available", message=NOT_AVAILABLE)
        response.status_code = 404
    return response


@bp.get("/d/<token>")
@public
def link_page(token: str):
    """The page a person sees when opening the link: never uses up a download."""
    s = get_session()
    deployment = deploy.find(s, link_token=token)
    now = clock.now()
    try:
        deployment = deploy.check(s, deployment, now)
    except deploy.Refused as refused:
        _log(s, refused.user_id, refused.outcome, now)
        keep_changes_on_refusal()
        return _private(
            Response(
                render_template("blade/public_link.html", available=False, message=NOT_AVAILABLE),
                404,
            )
        )
    _log(s, deployment.user_id, "opened", now)
    user = s.get(DeploymentUser, deployment.user_id)
    from .. import mail

    return _private(
        Response(
            render_template(
                "blade/public_link.html",
                available=True,
                deployment=deployment,
                token=token,
                needs_pin=bool(user.deployment_pin),
                form=PinForm(),
                links=mail.current(s).links,
                labels={k: label for k, (label, _) in mail.STORE_LINKS.items()},
            )
        )
    )


@bp.post("/d/<token>")
@public
def link_download(token: str):
    """Download to this computer (desktop clients): an explicit request, counted."""
    s = get_session()
    form = PinForm()
    if not form.validate_on_submit():
        return _private(
            Response(
                render_template(
                    "blade/public_link.html",
                    available=False,
                    message="The form expired; open the link again.",
                ),
                400,
            )
        )
    try:
        doc = _redeem(s, deploy.find(s, link_token=token), form.pin.data or None)
    except deploy.Refused as refused:
        _log(s, refused.user_id, refused.outcome, clock.now())
        keep_changes_on_refusal()
        if refused.outcome in ("pin_required", "pin_wrong"):
            message = (
                "Enter the Deployment PIN."
                if refused.outcome == "pin_required"
                else f"The PIN is not right. {refused.tries_left} tries left."
            )
            return _private(
                Response(
                    render_template(
                        "blade/public_link.html",
                        available=True,
                        token=token,
                        needs_pin=True,
                        form=form,
                        pin_error=message,
                        links={},
                        labels={},
                        deployment=None,
                    ),
                    401,
                )
            )
        return _private(
            Response(
                render_template("blade/public_link.html", available=False, message=NOT_AVAILABLE),
                404,
            )
        )
    return _private(
        Response(
            json.dumps(doc, indent=2),
            mimetype="application/json",
            headers={"Content-Disposition": 'attachment; filename="micollab-configuration.json"'},
        )
    )


@bp.post("/api/v1/redeem")
@public
@csrf_exempt
def api_redeem():
    """The client redeems a link token or an auth token (with the PIN when one is set)."""
    s = get_session()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(
            error="bad_request", message="Send a JSON object with link_token or auth_token."
        ), 400
    link_token = str(body.get("link_token") or "")[:200]
    auth_token = str(body.get("auth_token") or "")[:40]
    pin = body.get("pin")
    pin = str(pin)[:40] if pin not in (None, "") else None
    try:
        deployment = deploy.find(
            s, link_token=link_token or None, auth_token=None if link_token else auth_token or None
        )
        doc = _redeem(s, deployment, pin)
    except deploy.Refused as refused:
        return _private(_refused_json(s, refused))
    return _private(jsonify(doc))


def _credential() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip()[:200] if header.startswith("Bearer ") else ""


def _client_user(s) -> DeploymentUser | None:
    return deploy.user_for_credential(s, _credential())


@bp.get("/api/v1/client/status")
@public
def api_client_status():
    """The installed client asks whether a forced configuration waits for it."""
    user = _client_user(get_session())
    if user is None:
        return _private(
            jsonify(
                error="unauthorized", message="Unknown client credential: deploy the client again."
            )
        ), 401
    return _private(jsonify(force_config=bool(user.force_config)))


@bp.post("/api/v1/client/config")
@public
@csrf_exempt
def api_client_config():
    """The installed client fetches its configuration (a forced one clears the flag)."""
    s = get_session()
    user = _client_user(s)
    if user is None:
        return _private(
            jsonify(
                error="unauthorized", message="Unknown client credential: deploy the client again."
            )
        ), 401
    if not user.force_config:
        # The credential fetches only what an administrator forced; the rest needs a deployment
        # (downloads limited, PIN asked).
        return _private(
            jsonify(
                error="nothing_forced",
                message="No forced configuration is waiting for this client.",
            )
        ), 409
    now = clock.now()
    settings = deploy.LinkSettings.from_config(current_app.config)
    profile = s.get(Profile, user.profile_id)
    user.force_config = False
    user.downloaded_at = now
    _log(s, user.id, "forced", now)
    deployment = s.scalars(select(Deployment).where(Deployment.user_id == user.id)).first()
    return _private(
        jsonify(
            document(
                s,
                user,
                profile,
                credential=_credential(),
                base_url=settings.base(profile),
                deployment=deployment,
                now=now,
            )
        )
    )
