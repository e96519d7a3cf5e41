"""Deployment Profiles tab: list, create, modify, copy, delete."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from server_manager_stub.db import get_session
from server_manager_stub.validators import whole_number

from .. import choices, mbg
from ..forms.profiles import ProfileForm, form_data
from ..forms.validators import summary_of_pem
from ..models import Profile
from ..profiles import (
    ProfileError,
    copy_name,
    create_profile,
    delete_profile,
    list_profiles,
    update_profile,
)
from ..users import users_per_profile
from . import bp


def _render_form(form: ProfileForm, profile: Profile | None, status: int = 200):
    s = form.session
    cas = {p: summary_of_pem(form.stored_ca(p)) for p in ("pbx", "tw")}
    return render_template(
        "blade/profile_form.html",
        form=form,
        profile=profile,
        cas=cas,
        usage=users_per_profile(s).get(profile.id, 0) if profile else 0,
    ), status


def _saved(form: ProfileForm, profile: Profile, verb: str):
    flash(f"Profile '{profile.name}' {verb}.", "success")
    for notice in form.notices:
        flash(notice, "warning")
    return redirect(url_for(".profile_edit", profile_id=profile.id), 303)


@bp.get("/profiles")
def profiles():
    """The Deployment Profiles tab."""
    s = get_session()
    mbgs = dict(mbg.choices(s))
    return render_template(
        "blade/profiles.html",
        profiles=list_profiles(s),
        mbgs=mbgs,
        usage=users_per_profile(s),
        choices=choices,
    )


@bp.route("/profiles/new", methods=["GET", "POST"])
def profile_new():
    """Create a new profile, blank or as a copy (?copy=<id>)."""
    s = get_session()
    data = None
    copy = whole_number(request.args.get("copy")) if request.method == "GET" else None
    if copy is not None:
        source = s.get(Profile, copy) or abort(404)
        data = form_data(source) | {"name": copy_name(s, source.name), "copy_from": str(source.id)}
    form = ProfileForm(data=data, session=s, mbg_choices=mbg.choices(s))
    if form.validate_on_submit():
        return _saved(form, create_profile(s, form.values()), "created")
    return _render_form(form, None, 422 if form.errors else 200)


@bp.route("/profiles/<int:profile_id>", methods=["GET", "POST"])
def profile_edit(profile_id: int):
    """Modify a profile."""
    s = get_session()
    profile = s.get(Profile, profile_id) or abort(404)
    form = ProfileForm(
        data=form_data(profile) if request.method == "GET" else None,
        session=s,
        profile=profile,
        mbg_choices=mbg.choices(s),
    )
    if form.validate_on_submit():
        return _saved(form, update_profile(s, profile, form.values()), "saved")
    return _render_form(form, profile, 422 if form.errors else 200)


@bp.post("/profiles/<int:profile_id>/delete")
def profile_delete(profile_id: int):
    """Delete a profile (never the Default one, never one in use)."""
    s = get_session()
    profile = s.get(Profile, profile_id) or abort(404)
    try:
        delete_profile(s, profile)
    except ProfileError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Profile '{profile.name}' deleted.", "success")
    return redirect(url_for(".profiles"), 303)
