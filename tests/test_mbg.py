"""Connections to MBGs (R-MBG1-R-MBG6) against the MBG stand-in running as a real HTTPS server
on 127.0.0.1: the whole authorisation flow, failures, the primary-admin rule, expiry alarms and
paging through user records."""

from __future__ import annotations

import html
import http.cookiejar
import re
import socket
import ssl
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from click.testing import CliRunner
from helpers import login, submit
from sqlalchemy import select

from blade import mbg
from blade.models import MbgConnection, Profile
from server_manager_stub import db
from server_manager_stub.events import Alarm
from server_manager_stub.peers import free_port
from server_manager_stub.peers.mbg import MbgStandIn
from server_manager_stub.scheduler import run_checks

NEW = "/client-deployment/configuration/mbg/new"


@pytest.fixture
def standin(tmp_path, clock):
    server = MbgStandIn(
        users=30, admin_password="approve-me", data_dir=tmp_path / "mbg", clock=clock
    ).start()
    yield server
    server.stop()


@pytest.fixture
def config(config, standin):
    return {**config, "MBG_CA_BUNDLE": str(standin.certificate.ca_file), "MBG_TIMEOUT": 3.0}


class MbgAdminBrowser:
    """The MBG administrator's browser: logs into the stand-in's pages and approves."""

    def __init__(self, standin: MbgStandIn) -> None:
        ctx = ssl.create_default_context(cafile=str(standin.certificate.ca_file))

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=ctx),
            NoRedirect(),
        )
        self.base = standin.url

    def open(self, url: str, data: dict | None = None) -> tuple[int, str, dict]:
        if url.startswith("/"):
            url = self.base + url
        body = urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(url, body, timeout=5) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def login(self, next_url: str, password: str = "approve-me") -> tuple[int, str, dict]:
        return self.open("/login", {"password": password, "next": next_url})

    def approve_in_popup(self, authorize_url: str) -> str:
        """Approve through the authorize page; return where the MBG redirects the browser."""
        path = urlsplit(authorize_url)
        status, _, headers = self.login(f"{path.path}?{path.query}")
        assert status == 303
        status, page, _ = self.open(authorize_url)
        assert "Client Deployment</strong> asks to read the teleworker accounts" in page
        token_id = re.search(r"name='token_id' value='([^']+)'", page).group(1)
        status, _, headers = self.open(authorize_url, {"token_id": token_id, "decision": "approve"})
        assert status == 303
        return headers["Location"]

    def approve_on_webservices_page(self, token_id: str) -> str:
        """Approve on the Web Services page; return the verifier it shows."""
        assert self.login("/webservices")[0] == 303
        page = self.open("/webservices")[1]
        assert token_id in page
        page = self.open("/webservices", {"token_id": token_id})[1]
        return re.search(r"<code id='verifier'[^>]*>([^<]+)</code>", page).group(1)


def connection(app, name="DMZ MBG") -> MbgConnection:
    with app.app_context():
        return (
            db.get_session().scalars(select(MbgConnection).where(MbgConnection.name == name)).one()
        )


def create(admin, host, name="DMZ MBG"):
    return submit(admin, NEW, {"name": name, "host": host}, follow_redirects=True)


# --- the whole flow ----------------------------------------------------------------------------


def test_create_authorize_by_popup_redirect_and_verify(app, admin, standin):
    page = create(admin, standin.hostport)
    assert "saved and the AuthRequest sent" in html.unescape(page.text)
    pending = connection(app)
    assert pending.token_id and not pending.verified
    assert f"Token ID {pending.token_id}" in html.unescape(page.text)
    assert f'href="{html.escape(pending.authorize_url)}"' in page.text
    # The MBG administrator approves in the pop-up; the MBG sends the browser back to us.
    location = MbgAdminBrowser(standin).approve_in_popup(pending.authorize_url)
    callback = urlsplit(location)
    assert callback.path == "/client-deployment/configuration/mbg/callback"
    page = admin.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200
    assert "Connection DMZ MBG verified" in page.text and "data-close-popup" in page.text
    verified = connection(app)
    assert verified.verified and verified.access_token and verified.request_secret is None
    listing = admin.get("/client-deployment/configuration").text
    row = listing.split(">DMZ MBG</a>")[1].split("</tr>")[0]
    assert "<td>Yes</td>" in row and "<td>365</td>" in row
    assert f"<code>{pending.token_id}</code>" in row


def test_create_authorize_by_pasting_the_verifier(app, admin, standin):
    create(admin, standin.hostport)
    pending = connection(app)
    verifier = MbgAdminBrowser(standin).approve_on_webservices_page(pending.token_id)
    url = f"/client-deployment/configuration/mbg/{pending.id}/verifier"
    page = submit(
        admin,
        url,
        {"verifier": f"  {verifier.lower()} "},
        page=f"/client-deployment/configuration/mbg/{pending.id}",
        follow_redirects=True,
    )
    assert "is verified until" in page.text
    assert connection(app).verified


def test_a_wrong_verifier_is_refused_and_the_right_one_still_works(app, admin, standin):
    create(admin, standin.hostport)
    pending = connection(app)
    verifier = MbgAdminBrowser(standin).approve_on_webservices_page(pending.token_id)
    show = f"/client-deployment/configuration/mbg/{pending.id}"
    page = submit(
        admin, f"{show}/verifier", {"verifier": "WRONG123"}, page=show, follow_redirects=True
    )
    assert "The MBG refused the verifier: check that you copied it whole" in page.text
    assert not connection(app).verified
    page = submit(
        admin, f"{show}/verifier", {"verifier": verifier}, page=show, follow_redirects=True
    )
    assert connection(app).verified


def test_a_verifier_before_approval_says_so(app, admin, standin):
    create(admin, standin.hostport)
    show = f"/client-deployment/configuration/mbg/{connection(app).id}"
    page = submit(
        admin, f"{show}/verifier", {"verifier": "ABCD1234"}, page=show, follow_redirects=True
    )
    assert "has not approved this request yet" in page.text


# --- failures, each with its own message, connection left unverified --------------------------


def _silent_server():
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    return sock


def test_an_mbg_that_is_down(app, admin):
    port = free_port()
    page = create(admin, f"127.0.0.1:{port}")
    assert f"127.0.0.1:{port} refused the connection: nothing listens on port {port}" in page.text
    stored = connection(app)
    assert not stored.verified and stored.token_id is None and "refused" in stored.last_error


def test_an_mbg_that_times_out(app, admin, config):
    app.config["MBG_TIMEOUT"] = 0.5
    sock = _silent_server()
    try:
        page = create(admin, f"127.0.0.1:{sock.getsockname()[1]}")
    finally:
        sock.close()
    assert "did not answer within 0.5 seconds" in page.text
    assert not connection(app).verified


def test_an_mbg_whose_certificate_is_not_trusted(app, admin, tmp_path):
    other = MbgStandIn(users=1, data_dir=tmp_path / "other").start()  # its own, unknown CA
    try:
        page = create(admin, other.hostport)
    finally:
        other.stop()
    assert "is not trusted" in page.text and "MBG_CA_BUNDLE" in page.text
    assert not connection(app).verified


def test_a_host_that_is_not_an_mbg_web_service(app, admin, standin):
    # The stand-in's HTTP approval page is not its HTTPS web service.
    ui = MbgStandIn(users=1, ui_port=free_port(), data_dir=standin.data_dir / "ui").start()
    try:
        page = create(admin, f"127.0.0.1:{ui.ui_port}")
    finally:
        ui.stop()
    assert "TLS connection to" in page.text and "HTTPS port" in page.text


def test_an_unreadable_ca_bundle_is_a_message_not_an_error_page(app, admin, standin, tmp_path):
    app.config["MBG_CA_BUNDLE"] = str(tmp_path / "missing.pem")
    page = create(admin, standin.hostport)
    assert page.status_code == 200
    assert "MBG_CA_BUNDLE" in page.text and "cannot be read" in page.text


@pytest.mark.parametrize(
    ("name", "host", "field", "message"),
    [
        ("", "mbg.example.com", "name", "Enter a name for the connection."),
        ("x" * 65, "mbg.example.com", "name", "at most 64 characters"),
        ("A", "", "host", "Enter the MBG&#39;s host name or IP address."),
        ("A", "https://mbg.example.com", "host", "without https:// or a path"),
        ("A", "mbg.example.com:99999", "host", "a number from 1 to 65535"),
        ("A", "mbg", "host", "Enter a fully qualified name"),
        ("A", "999.1.1.1", "host", "This is not a valid IPv4 address."),
        ("A", "[2001:db8::1]8443", "host", "[2001:db8::1]:8443"),
    ],
)
def test_create_refuses_bad_values(app, admin, name, host, field, message):
    response = submit(admin, NEW, {"name": name, "host": host})
    assert response.status_code == 422
    assert message in response.text.split(f'id="{field}-error">')[1].split("</p>")[0]
    with app.app_context():
        assert db.get_session().scalars(select(MbgConnection)).all() == []


def test_names_are_unique(app, admin, standin):
    create(admin, standin.hostport, name="Edge")
    response = submit(admin, NEW, {"name": "EDGE", "host": "mbg2.example.com"})
    assert response.status_code == 422
    assert "A connection named &#39;EDGE&#39; already exists." in response.text


@pytest.mark.parametrize(
    "host",
    [
        "mbg.example.com",
        "mbg.example.com:8443",
        "203.0.113.7:443",
        "[2001:db8::1]:8443",
        "2001:db8::1",
    ],
)
def test_create_accepts_fqdn_or_ip_with_optional_port(app, admin, host):
    # Nothing listens there (TEST-NET/documentation names): the connection is kept unverified.
    app.config["MBG_TIMEOUT"] = 0.2
    submit(admin, NEW, {"name": "A", "host": host})
    assert connection(app, "A").host == host


# --- the primary administrator only ----------------------------------------------------------


def test_a_non_primary_administrator_cannot_create_or_authenticate(app, admin, operator, standin):
    create(admin, standin.hostport)
    existing = connection(app)
    page = operator.get("/client-deployment/configuration").text
    assert "Create new connection" not in page and "Only the primary administrator" in page
    assert operator.get(NEW).status_code == 403
    show = f"/client-deployment/configuration/mbg/{existing.id}"
    for url, data in [
        (NEW, {"name": "Mine", "host": standin.hostport}),
        (f"{show}/authenticate", {}),
        (f"{show}/verifier", {"verifier": "X"}),
        (f"{show}/delete", {}),
    ]:
        response = submit(operator, url, data, page="/client-deployment/configuration")
        assert response.status_code == 403, url
        assert "Only the primary administrator may do this." in response.text
    after = connection(app)
    assert (after.token_id, after.verified) == (existing.token_id, existing.verified)
    with app.app_context():
        assert len(db.get_session().scalars(select(MbgConnection)).all()) == 1
    assert "Authenticate" not in operator.get(show).text


# --- expiry alarms through tick ----------------------------------------------------------------


def _verify(app, admin, standin) -> MbgConnection:
    create(admin, standin.hostport)
    pending = connection(app)
    verifier = standin.approve(pending.token_id)
    show = f"/client-deployment/configuration/mbg/{pending.id}"
    submit(admin, f"{show}/verifier", {"verifier": verifier}, page=show)
    verified = connection(app)
    assert verified.verified
    return verified


def _expiry_alarm(app, connection_id):
    with app.app_context():
        return (
            db.get_session()
            .scalars(select(Alarm).where(Alarm.key == mbg.alarm_key(connection_id)))
            .one_or_none()
        )


@pytest.mark.parametrize(
    ("days_before", "severity"),
    [
        (29, None),
        (28, "warning"),
        (15, "warning"),
        (14, "minor"),
        (1, "minor"),
        (0, "major"),
        (-3, "major"),
    ],
)
def test_expiry_alarm_severity(app, admin, standin, clock, days_before, severity):
    c = _verify(app, admin, standin)
    clock.current = c.expires_at - timedelta(days=days_before)
    assert run_checks(app)["client_deployment.mbg_expiry"] == "ok"
    alarm = _expiry_alarm(app, c.id)
    assert (alarm.severity if alarm else None) == severity
    if severity:
        assert alarm.source == "Client Deployment: MBG" and "DMZ MBG" in alarm.message


def test_expiry_alarm_changes_in_place_and_clears_after_re_authentication(
    app, admin, standin, clock
):
    c = _verify(app, admin, standin)
    for days, severity in [(28, "warning"), (14, "minor"), (0, "major")]:
        clock.current = c.expires_at - timedelta(days=days)
        run_checks(app)
        assert _expiry_alarm(app, c.id).severity == severity
    with app.app_context():
        assert len(db.get_session().scalars(select(Alarm)).all()) == 1  # one alarm, changed
    login(admin, "admin")  # a year went by: the session idled out
    page = admin.get("/client-deployment/configuration").text
    assert "expired" in page
    # Re-authenticate: Authenticate, approve, verifier.
    show = f"/client-deployment/configuration/mbg/{c.id}"
    submit(admin, f"{show}/authenticate", page=show)
    verifier = standin.approve(connection(app).token_id)
    submit(admin, f"{show}/verifier", {"verifier": verifier}, page=show)
    renewed = connection(app)
    assert renewed.expires_at == clock() + timedelta(days=365)
    assert _expiry_alarm(app, c.id).severity == "cleared"
    run_checks(app)
    assert _expiry_alarm(app, c.id).severity == "cleared"


def test_a_revoked_authorization_is_explained(app, admin, standin):
    c = _verify(app, admin, standin)
    standin.revoke_all()
    with app.app_context(), pytest.raises(mbg.MbgError, match="revoked on the MBG or has expired"):
        list(mbg.iter_user_records(connection(app), app.config))
    assert c.verified


# --- user records ----------------------------------------------------------------------------


def test_paging_through_2500_records_returns_each_once(app, admin, tmp_path, clock):
    big = MbgStandIn(
        users=2500,
        admin_password="approve-me",
        data_dir=tmp_path / "big",
        clock=clock,
        certificate=None,
    ).start()
    try:
        app.config["MBG_CA_BUNDLE"] = str(big.certificate.ca_file)
        c = _verify(app, admin, big)
        with app.app_context():
            records = list(mbg.iter_user_records(c, app.config, per_page=200))
            one = mbg.fetch_user_record(c, "u000042", app.config)
            gone = mbg.fetch_user_record(c, "u999999", app.config)
    finally:
        big.stop()
    ids = [r["id"] for r in records]
    assert len(ids) == 2500 and len(set(ids)) == 2500
    assert {
        "first_name",
        "last_name",
        "directory_number",
        "email",
        "sip_username",
        "sip_password",
    } <= set(records[0])
    assert one["id"] == "u000042" and gone is None


def test_records_of_an_unverified_connection_are_refused(app, admin, standin):
    create(admin, standin.hostport)
    with app.app_context(), pytest.raises(mbg.MbgError, match="not verified"):
        list(mbg.iter_user_records(connection(app), app.config))


# --- profiles and connections ------------------------------------------------------------------


def test_profiles_list_connections_and_use_teleworker_with_one(app, admin, standin):
    c = _verify(app, admin, standin)
    from test_profiles import post, valid

    page = admin.get("/client-deployment/profiles/new").text
    assert f'<option value="{c.id}">DMZ MBG</option>' in page
    response = post(
        admin,
        valid(
            use_teleworker="on_locked",
            mbg_connection_id=str(c.id),
            mbg_sip_host="custom",
            mbg_sip_host_custom="203.0.113.9",
            tw_transport="tcp",
            tw_srtp_mode="mandatory",
        ),
    )
    assert response.status_code == 303, response.text
    with app.app_context():
        s = db.get_session()
        profile = s.scalars(select(Profile).where(Profile.name == "Sales")).one()
        assert (profile.use_teleworker, profile.mbg_connection_id) == ("on_locked", c.id)
        assert profile.mbg_sip_host_custom == "203.0.113.9"
        assert profile.tw_srtp_mode == "off"  # hidden with TCP: not stored
        assert mbg.mbg_fqdn(s, profile) == "127.0.0.1"
    listing = admin.get("/client-deployment/profiles").text
    assert "DMZ MBG" in listing.split(">Sales</a>")[1].split("</tr>")[0]
    # A connection in use cannot be deleted.
    show = f"/client-deployment/configuration/mbg/{c.id}"
    page = submit(admin, f"{show}/delete", page=show, follow_redirects=True)
    assert "is used by the profile(s) Sales" in html.unescape(page.text)
    assert connection(app).id == c.id


def test_an_unused_connection_is_deleted_with_its_alarm_cleared(app, admin, standin, clock):
    c = _verify(app, admin, standin)
    clock.current = c.expires_at
    run_checks(app)
    login(admin, "admin")  # a year went by: the session idled out
    show = f"/client-deployment/configuration/mbg/{c.id}"
    page = submit(admin, f"{show}/delete", page=show, follow_redirects=True)
    assert "Connection &#39;DMZ MBG&#39; deleted." in page.text
    assert _expiry_alarm(app, c.id).severity == "cleared"


def test_init_creates_the_local_mbg_connection_once(tmp_path, empty_database_url):
    from server_manager_stub.cli import main

    env = {
        "SM_INSTANCE_DIR": str(tmp_path / "inst"),
        "DATABASE_URL": empty_database_url,
        "LOG_LEVEL": "WARNING",
        "LOCAL_MBG": "127.0.0.1:5443",
        "SECRET_KEY": "",
        "SM_SECRET_KEYS": "",
    }
    first = CliRunner().invoke(main, ["init"], env=env)
    assert "Created the MBG connection 'Local MBG' for 127.0.0.1:5443" in first.output
    second = CliRunner().invoke(main, ["init"], env=env)
    assert "Local MBG" not in second.output
