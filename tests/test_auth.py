"""Login, logout, lock-out, sessions and the rule that every page needs a login."""

from __future__ import annotations

import pytest
from helpers import PASSWORD, login, submit
from sqlalchemy import select

from server_manager_stub import db
from server_manager_stub.auth import Admin, AdminSession
from server_manager_stub.events import Alarm
from server_manager_stub.options import Option

# Endpoints reachable without logging in; everything else must send the visitor to login.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "healthz",
    "static",
    "client_deployment.static",
    # What mobile clients and users reach with a deployment link, auth token or credential.
    "client_deployment.link_page",
    "client_deployment.link_download",
    "client_deployment.api_redeem",
    "client_deployment.api_client_status",
    "client_deployment.api_client_config",
}


def _sample_url(app, rule) -> str:
    from werkzeug.routing.converters import NumberConverter

    values = {
        arg: 1 if isinstance(conv, NumberConverter) else "x"
        for arg, conv in rule._converters.items()
    }
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def test_every_non_public_url_redirects_anonymous_visitors_to_login(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = _sample_url(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code == 302, f"{method} {url} answered {response.status_code}"
            assert response.headers["Location"].startswith("/login?next="), (method, url)
            checked += 1
    assert checked >= 20  # the walk really covered the app's pages


def test_public_endpoints_are_reachable_without_login(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").json == {"status": "ok"}
    with client.get("/static/shell/shell.css") as css:
        assert css.status_code == 200 and "--accent" in css.text


def test_login_then_pages_open_and_logout_ends_the_session(app, make_admin):
    make_admin("admin", primary=True)
    c = app.test_client()
    response = login(c, "admin")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "admin" in c.get("/").text
    cookie = c.get_cookie("sm_session")
    assert submit(c, "/logout", page="/").status_code == 303
    # Replaying the cookie captured before logout must not get back in (FACTS.md pitfall).
    replay = app.test_client()
    replay.set_cookie("sm_session", cookie.value)
    response = replay.get("/events/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_login_returns_to_the_page_asked_for_but_never_off_site(app, make_admin):
    make_admin("admin", primary=True)
    c = app.test_client()
    r = submit(c, "/login?next=/events/", {"username": "admin", "password": PASSWORD})
    assert r.headers["Location"] == "/events/"
    c2 = app.test_client()
    r = submit(c2, "/login?next=//evil.example/x", {"username": "admin", "password": PASSWORD})
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("", PASSWORD, "Enter your user name."),
        ("admin", "", "Enter your password."),
        ("admin", "wrong password", "The user name or password is not right."),
        ("nobody", PASSWORD, "The user name or password is not right."),
    ],
)
def test_login_refusals_say_what_is_wrong(app, make_admin, client, username, password, message):
    make_admin("admin", primary=True)
    response = submit(client, "/login", {"username": username, "password": password})
    assert response.status_code == 200
    assert message in response.text
    assert client.get("/events/").status_code == 302


def test_user_names_are_case_insensitive(app, make_admin, client):
    make_admin("Admin", primary=True)
    assert login(client, "ADMIN").status_code == 303


def test_five_failed_logins_lock_the_account_for_15_minutes_with_a_warning_alarm(
    app, make_admin, client, clock
):
    make_admin("admin", primary=True)
    for _ in range(4):
        assert "not right" in login(client, "admin", "wrong").text
    response = login(client, "admin", "wrong")
    assert "locked for 15 minutes" in response.text
    # Even the right password is refused while the lock holds.
    response = login(client, "admin", PASSWORD)
    assert response.status_code == 200 and "This account is locked" in response.text
    with app.app_context():
        alarm = db.get_session().scalars(select(Alarm)).one()
        assert (alarm.key, alarm.severity, alarm.source) == (
            "shell.login.locked.admin",
            "warning",
            "Login",
        )
        assert "locked for 15 minutes after 5 failed logins" in alarm.message
    clock.advance(minutes=14)
    assert "This account is locked" in login(client, "admin", PASSWORD).text
    clock.advance(minutes=2)
    assert login(client, "admin", PASSWORD).status_code == 303
    with app.app_context():
        alarm = db.get_session().scalars(select(Alarm)).one()
        assert alarm.severity == "cleared"


def test_a_success_resets_the_failure_count(app, make_admin, client):
    make_admin("admin", primary=True)
    for _ in range(4):
        login(client, "admin", "wrong")
    assert login(client, "admin").status_code == 303
    submit(client, "/logout", page="/")
    for _ in range(4):
        login(client, "admin", "wrong")
    assert login(client, "admin").status_code == 303


def test_idle_sessions_expire(app, admin, clock):
    assert admin.get("/events/").status_code == 200
    clock.advance(minutes=29)
    assert admin.get("/events/").status_code == 200
    clock.advance(minutes=31)
    response = admin.get("/events/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_session_cookie_is_httponly_lax_and_secure_over_https(app, make_admin):
    make_admin("admin", primary=True)
    c = app.test_client()
    login(c, "admin")
    cookie = c.get_cookie("sm_session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    https = app.test_client()
    submit(
        https,
        "/login",
        {"username": "admin", "password": PASSWORD},
        base_url="https://sm.example.test",
    )
    secure_cookie = https.get_cookie("sm_session", domain="sm.example.test")
    assert secure_cookie.secure and secure_cookie.http_only


def test_post_without_csrf_token_is_refused_and_changes_nothing(app, admin):
    response = admin.post(
        "/events/alerts", data={"recipient": "ops@example.com", "min_severity": "minor"}
    )
    assert response.status_code == 400
    assert "The form was not sent from this site" in response.text
    with app.app_context():
        assert db.get_session().scalars(select(Option)).all() == []


def test_login_form_also_needs_its_csrf_token(app, make_admin, client):
    make_admin("admin", primary=True)
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/events/").status_code == 302


def test_change_password_ends_other_sessions(app, admin, make_admin):
    other = app.test_client()
    login(other, "admin")
    assert other.get("/events/").status_code == 200
    response = submit(
        admin,
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert response.status_code == 303
    assert admin.get("/events/").status_code == 200  # this session goes on
    assert other.get("/events/").status_code == 302  # the other one ended
    fresh = app.test_client()
    assert login(fresh, "admin", PASSWORD).status_code == 200
    assert login(fresh, "admin", "a brand new passphrase").status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        (
            "wrong current pw",
            "a brand new passphrase",
            "a brand new passphrase",
            "This is not your current password.",
        ),
        (PASSWORD, "short", "short", "Use at least 12 characters."),
        (
            PASSWORD,
            "a brand new passphrase",
            "another passphrase",
            "The two new passwords are not the same.",
        ),
        (PASSWORD, PASSWORD, PASSWORD, "Choose a password different from the current one."),
    ],
)
def test_change_password_refusals(app, admin, current, new, confirm, message):
    response = submit(
        admin,
        "/account/password",
        {"current_password": current, "new_password": new, "confirm_password": confirm},
    )
    assert response.status_code == 422
    assert message in response.text
    with app.app_context():
        assert db.get_session().scalars(select(AdminSession)).all()  # still logged in
    assert login(app.test_client(), "admin").status_code == 303  # password unchanged


def test_primary_administrator_adds_an_administrator_with_a_password_shown_once(app, admin):
    response = submit(admin, "/admins/", {"username": "Operator"})
    assert response.status_code == 200
    password = response.text.split('id="new-password">')[1].split("<")[0]
    c = app.test_client()
    assert login(c, "operator", password).status_code == 303
    assert "Only the primary administrator" in c.get("/admins/").text


@pytest.mark.parametrize(
    ("username", "message"),
    [("", "Enter a user name."), ("bad name!", "Use letters, digits"), ("admin", "already exists")],
)
def test_adding_an_administrator_refuses_bad_names(app, admin, username, message):
    response = submit(admin, "/admins/", {"username": username})
    assert response.status_code == 422 and message in response.text
    with app.app_context():
        assert db.get_session().scalars(select(Admin.username)).all() == ["admin"]


def test_only_the_primary_administrator_may_manage_administrators(app, operator):
    response = submit(operator, "/admins/", {"username": "mallory"}, page="/admins/")
    assert response.status_code == 403
    assert "Only the primary administrator may do this." in response.text
    with app.app_context():
        assert "mallory" not in db.get_session().scalars(select(Admin.username)).all()


def test_the_last_primary_administrator_cannot_be_deleted(app, admin, operator):
    with app.app_context():
        ids = {a.username: a.id for a in db.get_session().scalars(select(Admin))}
    response = submit(admin, f"/admins/{ids['operator']}/delete", page="/admins/")
    assert response.status_code == 303
    assert operator.get("/events/").status_code == 302  # deleted account's session ended
    response = submit(
        admin, f"/admins/{ids['admin']}/delete", page="/admins/", follow_redirects=True
    )
    assert "You cannot delete your own account." in response.text


def test_a_nul_character_in_any_form_is_refused_with_a_message(app, admin):
    response = submit(
        admin, "/events/alerts", {"recipient": "a\x00@example.com", "min_severity": "major"}
    )
    assert response.status_code == 400
    assert "contains a NUL character" in response.text
    assert admin.get("/events/?source=%00").status_code == 400
