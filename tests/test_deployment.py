"""Deployment (R-DEP1-R-DEP10): the whole journey over HTTP, the download limit under
parallel requests, expiry, PIN lock-out, the e-mail and its template, forced configuration."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import threading
from datetime import timedelta

import jsonschema
import pytest
from factories import make_users, user
from helpers import csrf_token, submit
from sqlalchemy import select, update

from blade.client_config import schema
from blade.deploy import digest
from blade.models import Deployment, DeploymentUser, DownloadLog, Profile
from server_manager_stub import db
from server_manager_stub.events import Alarm
from server_manager_stub.outbox import OutboxMessage, deliver_batch
from server_manager_stub.peers.client import ClientError, MobileClient
from server_manager_stub.peers.smtp import SmtpSink
from server_manager_stub.scheduler import run_checks

REDEEM = "/client-deployment/api/v1/redeem"
PIN = "482915"


@pytest.fixture
def smtp(app):
    sink = SmtpSink().start()
    app.config["MAIL_URL"] = sink.url
    yield sink
    sink.stop()


def act(client, action, ids):
    return client.post(
        "/client-deployment/users/action",
        data={
            "action": action,
            "ids": ids,
            "csrf_token": csrf_token(client, "/client-deployment/"),
        },
    )


def deploy(client, ids) -> str:
    return (
        html.unescape(act(client, "deploy", ids).text)
        .replace("<strong>", "")
        .replace("</strong>", "")
    )


def delivered(app, smtp):
    """Run the mail worker once; return the e-mails the SMTP server got, parsed."""
    deliver_batch(app)
    return [m.message for m in smtp.messages]


def parts(email):
    text = email.get_body(("plain",)).get_content()
    body = email.get_body(("html",)).get_content()
    png = next(p for p in email.walk() if p.get_content_type() == "image/png").get_content()
    link = re.search(r"https?://\S+/client-deployment/d/[\w-]+", text).group(0)
    token = re.search(r"authentication token: ([0-9A-Z]{5}-[0-9A-Z]{5})", text).group(1)
    return text, body, png, link, token


def decode_qr(png: bytes, tmp_path) -> str:
    """Read the QR code back with a real decoder (Debian's zbar-tools)."""
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg is needed (apt-get install zbar-tools; the Makefile does it)"
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    return subprocess.run(
        [zbarimg, "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def deployment_of(app, user_id) -> Deployment | None:
    with app.app_context():
        return (
            db.get_session()
            .scalars(select(Deployment).where(Deployment.user_id == user_id))
            .one_or_none()
        )


def log_of(app, user_id) -> list[str]:
    with app.app_context():
        return list(
            db.get_session().scalars(
                select(DownloadLog.outcome)
                .where(DownloadLog.user_id == user_id)
                .order_by(DownloadLog.id)
            )
        )


# --- the journey ------------------------------------------------------------------------------


def test_the_whole_journey_over_http(app, admin, smtp, tmp_path):
    (uid,) = make_users(
        app, 1, deployment_pin=PIN, pbx_sip_password="pbx-pw", mbg_sip_password="mbg-pw"
    )
    assert "1 user(s) deployed (e-mail queued)" in deploy(admin, [uid])
    assert user(app, uid).deployed_at is not None
    assert smtp.messages == []  # the request only wrote outbox rows
    (email,) = delivered(app, smtp)
    assert email["To"] == "user0000@example.com"
    assert email["Subject"] == "MiCollab: your phone's setup, First0000 User0000 (5000)"
    text, body, png, link, token = parts(email)
    assert link.startswith("https://sm.example.test/client-deployment/d/")
    assert f'<a href="{link}">' in body and f"<strong>{token}</strong>" in body
    assert 'src="cid:qrcode"' in body
    assert decode_qr(png, tmp_path) == link
    for content in (text, body, email["Subject"]):
        assert PIN not in content  # the PIN is never in the e-mail
    d = deployment_of(app, uid)
    assert d.link_token_hash == digest(link.rsplit("/", 1)[1])  # only the hash is stored
    assert d.auth_token_hash == digest(token)

    client = app.test_client()  # the phone: no administrator login
    page = client.get(path_of(link))
    assert page.status_code == 200 and "MiCollab setup" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert deployment_of(app, uid).downloads_left == 3  # opening the link uses nothing up

    token_only = {"link_token": link.rsplit("/", 1)[1]}
    r = client.post(REDEEM, json=token_only)
    assert (r.status_code, r.json["error"]) == (401, "pin_required")
    r = client.post(REDEEM, json={**token_only, "pin": "000000"})
    assert (r.status_code, r.json["error"], r.json["tries_left"]) == (401, "pin_incorrect", 4)
    r = client.post(REDEEM, json={**token_only, "pin": PIN})
    assert r.status_code == 200
    jsonschema.validate(r.json, schema())
    assert r.json["user"]["last_name"] == "User0000"
    assert r.json["pbx"]["password"] == "pbx-pw"
    assert r.json["deployment"]["downloads_left"] == 2
    assert user(app, uid).downloaded_at is not None
    assert (
        client.post(
            REDEEM, json={"auth_token": token.lower().replace("-", " "), "pin": PIN}
        ).status_code
        == 200
    )  # typed, loosely
    assert client.post(REDEEM, json={**token_only, "pin": PIN}).status_code == 200  # the 3rd
    fourth = client.post(REDEEM, json={**token_only, "pin": PIN})
    assert fourth.status_code == 404 and fourth.json["error"] == "not_available"
    assert log_of(app, uid) == [
        "opened",
        "pin_required",
        "pin_wrong",
        "downloaded",
        "downloaded",
        "downloaded",
        "used_up",
    ]
    user_page = admin.get(f"/client-deployment/users/{uid}").text
    assert "Refused: no downloads left" in user_page and "Wrong PIN" in user_page

    # Deploying again is how an e-mail is resent: the old link stops working.
    deploy(admin, [uid])
    new_email = delivered(app, smtp)[-1]
    _, _, _, new_link, _ = parts(new_email)
    assert new_link != link
    assert client.post(REDEEM, json={**token_only, "pin": PIN}).status_code == 404
    r = client.post(REDEEM, json={"link_token": new_link.rsplit("/", 1)[1], "pin": PIN})
    assert r.status_code == 200


def test_invalid_expired_and_used_up_get_the_same_answer_and_the_log_the_reason(
    app, admin, smtp, clock
):
    ids = make_users(app, 2)
    deploy(admin, ids)
    links = [parts(e)[3] for e in delivered(app, smtp)]
    client = app.test_client()
    answers = []
    answers.append(client.post(REDEEM, json={"link_token": "no-such-token"}))
    for _ in range(4):
        last = client.post(REDEEM, json={"link_token": links[0].rsplit("/", 1)[1]})
    answers.append(last)
    clock.advance(days=42)
    answers.append(client.post(REDEEM, json={"link_token": links[1].rsplit("/", 1)[1]}))
    assert {(a.status_code, a.json["message"]) for a in answers} == {
        (404, answers[0].json["message"])
    }
    with app.app_context():
        outcomes = dict(
            db.get_session()
            .execute(
                select(DownloadLog.outcome, DownloadLog.user_id).where(
                    DownloadLog.outcome.in_(["invalid", "used_up", "expired"])
                )
            )
            .all()
        )
    assert outcomes == {"invalid": None, "used_up": ids[0], "expired": ids[1]}


def test_a_mail_scanner_opening_the_link_uses_up_nothing(app, admin, smtp):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    link = parts(delivered(app, smtp)[0])[3]
    scanner = app.test_client()
    for _ in range(10):
        assert scanner.get(path_of(link)).status_code == 200
        assert scanner.head(path_of(link)).status_code == 200
    assert deployment_of(app, uid).downloads_left == 3


def test_download_to_this_computer_from_the_link_page(app, admin, smtp):
    (uid,) = make_users(app, 1, deployment_pin=PIN)
    deploy(admin, [uid])
    link = parts(delivered(app, smtp)[0])[3]
    browser = app.test_client()
    page = browser.get(path_of(link)).text
    assert "Deployment PIN" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    wrong = browser.post(path_of(link), data={"csrf_token": token, "pin": "1"})
    assert wrong.status_code == 401 and "The PIN is not right. 4 tries left." in wrong.text
    right = browser.post(path_of(link), data={"csrf_token": token, "pin": PIN})
    assert right.status_code == 200
    assert right.headers["Content-Disposition"].startswith("attachment;")
    jsonschema.validate(right.get_json(force=True), schema())
    assert deployment_of(app, uid).downloads_left == 2


# --- the limit holds under parallel requests ----------------------------------------------------


def test_twenty_parallel_redeems_get_exactly_three_downloads(app, admin, smtp, live_server):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    link = parts(delivered(app, smtp)[0])[3]
    barrier = threading.Barrier(20)
    results: list[str] = []

    def phone():
        client = MobileClient()
        barrier.wait()
        try:
            client.open_link(link)
            results.append("ok")
        except ClientError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=phone) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 3, results
    assert results.count("not_available") == 17
    assert deployment_of(app, uid).downloads_left == 0


# --- expiry, PIN lock-out ---------------------------------------------------------------------


def test_a_deployment_expires_after_six_weeks_and_tick_deletes_it(app, admin, smtp, clock):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    token = parts(delivered(app, smtp)[0])[3].rsplit("/", 1)[1]
    clock.advance(days=41, hours=23)
    assert app.test_client().post(REDEEM, json={"link_token": token}).status_code == 200
    run_checks(app)
    assert deployment_of(app, uid) is not None
    clock.advance(hours=1)
    assert app.test_client().post(REDEEM, json={"link_token": token}).status_code == 404
    run_checks(app)
    assert deployment_of(app, uid) is None
    assert user(app, uid).deployed_at is not None  # when it was deployed stays known


def test_five_wrong_pins_lock_the_deployment_and_raise_an_alarm(app, admin, smtp):
    (uid,) = make_users(app, 1, deployment_pin=PIN)
    deploy(admin, [uid])
    token = parts(delivered(app, smtp)[0])[3].rsplit("/", 1)[1]
    phone = app.test_client()
    tries = [
        phone.post(REDEEM, json={"link_token": token, "pin": f"11110{i}"}).json for i in range(5)
    ]
    assert [t.get("tries_left") for t in tries[:4]] == [4, 3, 2, 1]
    assert tries[4]["error"] == "not_available"  # locked: the same answer as any other
    assert phone.post(REDEEM, json={"link_token": token, "pin": PIN}).status_code == 404
    d = deployment_of(app, uid)
    assert d.locked_at is not None and d.pin_failures == 5
    with app.app_context():
        alarm = db.get_session().scalars(select(Alarm)).one()
    assert alarm.key == f"client_deployment.pin_lock.{uid}" and alarm.severity == "minor"
    assert "locked after 5 wrong PINs" in alarm.message
    # Deploying again gives a new link and clears the alarm.
    deploy(admin, [uid])
    with app.app_context():
        assert db.get_session().scalars(select(Alarm)).one().severity == "cleared"


# --- the e-mail: recipient rules, escaping, template ----------------------------------------


def _profile(app, **values):
    with app.app_context(), db.get_db(app).transaction() as s:
        s.execute(update(Profile).where(Profile.is_default).values(**values))


def test_override_user_email_and_users_without_an_address(app, admin, smtp):
    with_email, without = make_users(app, 2, email=lambda i: ["own@example.com", ""][i])
    page = deploy(admin, [with_email, without])
    assert "1 user(s) deployed" in page
    assert "no e-mail address, and its profile 'Default' has no deployment e-mail address" in page
    _profile(app, deployment_email="deploy@example.com")
    deploy(admin, [without])
    _profile(app, override_user_email=True)
    deploy(admin, [with_email])
    recipients = [m.rcpt_tos for m in (delivered(app, smtp) and smtp.messages)]
    assert recipients == [["own@example.com"], ["deploy@example.com"], ["deploy@example.com"]]


def test_user_values_are_escaped_in_the_html(app, admin, smtp):
    (uid,) = make_users(
        app, 1, first_name="<script>alert(1)</script>", last_name="O'Neil & <b>Co</b>"
    )
    deploy(admin, [uid])
    (email,) = delivered(app, smtp)
    body = email.get_body(("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>Co</b>" not in body


def test_a_custom_template_is_used_with_its_placeholders(app, admin, smtp):
    response = submit(
        admin,
        "/client-deployment/configuration/email",
        {
            "subject": "Setup for [#####dn#####]",
            "body": "Hi [#####firstname#####]!\n[#####link#####] / [#####authtoken#####] "
            "[#####qrcode#####] <i>plain</i>",
            "link_appstore": "https://apps.example.com/micollab",
        },
    )
    assert response.status_code == 303
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    (email,) = delivered(app, smtp)
    assert email["Subject"] == "Setup for 5000"
    body = email.get_body(("html",)).get_content()
    assert "Hi First0000!" in body and "&lt;i&gt;plain&lt;/i&gt;" in body


@pytest.mark.parametrize(
    ("subject", "body", "field", "message"),
    [
        (
            "",
            "[#####link#####] [#####qrcode#####]",
            "body",
            "The body must contain [#####authtoken#####]",
        ),
        (
            "",
            "[#####authtoken#####]",
            "body",
            "The body must contain [#####link#####], [#####qrcode#####]",
        ),
        (
            "",
            "[#####link#####] [#####authtoken#####] [#####qrcode#####] [#####pin#####]",
            "body",
            "[#####pin#####] is not a placeholder here",
        ),
        ("[#####link#####]", "", "subject", "[#####link#####] is not a placeholder here"),
        (
            "Hi [####firstname####]",
            "",
            "subject",
            "[####firstname####] looks like a placeholder but is not written as "
            "[#####firstname#####]",
        ),
    ],
)
def test_template_validation_messages(app, admin, subject, body, field, message):
    response = submit(
        admin, "/client-deployment/configuration/email", {"subject": subject, "body": body}
    )
    assert response.status_code == 422
    error = html.unescape(response.text.split(f'id="{field}-error">')[1].split("</p>")[0])
    assert message in error


def test_load_default_text_and_preview(app, admin):
    page = submit(
        admin,
        "/client-deployment/configuration/email",
        {"subject": "x", "body": "y", "load_default": "1"},
    ).text
    assert "[#####authtoken#####]" in html.unescape(page) and "is loaded into the editor" in page
    page = submit(
        admin, "/client-deployment/configuration/email", {"subject": "", "body": "", "preview": "1"}
    ).text
    assert "Preview for a sample user" in page
    assert 'src="data:image/png;base64,' in page and "Becker &lt;Sales&gt;" in page
    assert "7KQ2M-X9D4T" in page


# --- forced configuration -----------------------------------------------------------------------


def test_set_force_config_reaches_the_stand_in_client(app, admin, smtp, live_server, tmp_path):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    link = parts(delivered(app, smtp)[0])[3]
    phone = MobileClient()
    phone.open_link(link)
    assert phone.poll() is False
    page = html.unescape(act(admin, "force_config", [uid]).text)
    assert "<strong>1</strong> user(s) marked" in page
    assert user(app, uid).force_config is True
    assert phone.poll() is True  # it saw the flag and fetched the configuration
    jsonschema.validate(phone.config, schema())
    assert user(app, uid).force_config is False
    assert phone.poll() is False
    assert deployment_of(app, uid).downloads_left == 2  # a forced fetch is not a download
    assert log_of(app, uid)[-1] == "forced"


def test_force_config_needs_a_deployed_user_and_auto_deploy_does_both(app, admin, smtp):
    deployed, fresh = make_users(app, 2)
    page = html.unescape(act(admin, "force_config", [fresh]).text)
    assert "not deployed yet: use Deploy (or Auto deploy)" in page
    deploy(admin, [deployed])
    page = html.unescape(act(admin, "auto_deploy", [deployed, fresh]).text)
    assert "2 user(s) deployed or marked" in page.replace("<strong>", "").replace("</strong>", "")
    assert user(app, deployed).force_config is True
    assert user(app, fresh).deployed_at is not None
    assert len(delivered(app, smtp)) == 2  # one e-mail each, none for the forced one


def test_deploy_all_matching_across_pages(app, admin, smtp):
    make_users(app, 30)
    response = admin.post(
        "/client-deployment/users/action",
        data={
            "action": "deploy",
            "select_all": "1",
            "q": "user001",
            "csrf_token": csrf_token(admin, "/client-deployment/"),
        },
    )
    assert "10 user(s) deployed" in html.unescape(response.text).replace("<strong>", "").replace(
        "</strong>", ""
    )
    with app.app_context():
        assert db.get_session().scalar(select(OutboxMessage.id).limit(1)) is not None
        assert len(db.get_session().scalars(select(Deployment)).all()) == 10


def test_deleting_a_user_removes_what_was_deployed(app, admin, smtp):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    admin.post(
        "/client-deployment/users/action",
        data={
            "action": "delete",
            "confirmed": "1",
            "ids": [uid],
            "csrf_token": csrf_token(admin, "/client-deployment/"),
        },
    )
    with app.app_context():
        s = db.get_session()
        assert s.scalars(select(Deployment)).all() == []
        assert s.get(DeploymentUser, uid) is None


def test_the_outbox_shows_the_deployment_email_as_composed_for_the_recipient(app, admin, tmp_path):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    with app.app_context():
        message = db.get_session().scalars(select(OutboxMessage)).one()
        assert message.text_body is None and message.renderer  # only the arguments are stored
        message_id = message.id
    page = admin.get(f"/outbox/{message_id}").text
    assert "MiCollab: your phone&#39;s setup" in page and "authentication token" in page
    frame = admin.get(f"/outbox/{message_id}/html").text
    assert f"/outbox/{message_id}/inline/qrcode" in frame
    qr = admin.get(f"/outbox/{message_id}/inline/qrcode")
    link = re.search(r"https://\S+/client-deployment/d/[\w-]+", page).group(0)
    assert decode_qr(qr.data, tmp_path) == link
    deliver_batch(app)  # no MAIL_URL: kept in the outbox, with the subject it was sent with
    with app.app_context():
        kept = db.get_session().get(OutboxMessage, message_id)
        assert (kept.status, kept.subject) == (
            "kept",
            "MiCollab: your phone's setup, First0000 User0000 (5000)",
        )


def test_expiry_setting_counts(app, admin, smtp, clock):
    app.config.update(DEPLOY_DAYS=7, DEPLOY_DOWNLOADS=1)
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    d = deployment_of(app, uid)
    assert d.expires_at - d.created_at == timedelta(days=7) and d.downloads_left == 1


def test_the_client_credential_fetches_only_forced_configurations_and_dies_on_redeploy(
    app, admin, smtp
):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    token = parts(delivered(app, smtp)[0])[3].rsplit("/", 1)[1]
    phone = app.test_client()
    config = phone.post(REDEEM, json={"link_token": token}).json
    headers = {"Authorization": f"Bearer {config['client']['credential']}"}
    url = "/client-deployment/api/v1/client/config"
    refused = phone.post(url, headers=headers)
    assert refused.status_code == 409 and refused.json["error"] == "nothing_forced"
    act(admin, "force_config", [uid])
    assert phone.post(url, headers=headers).status_code == 200
    assert phone.post(url, headers=headers).status_code == 409  # once per forced change
    # The phone is lost: the administrator deploys the user again. The old client is out.
    act(admin, "force_config", [uid])
    deploy(admin, [uid])
    status = phone.get("/client-deployment/api/v1/client/status", headers=headers)
    assert status.status_code == 401
    assert phone.post(url, headers=headers).status_code == 401


def test_sent_deployment_emails_keep_no_usable_link_in_the_outbox(app, admin, smtp):
    (uid,) = make_users(app, 1)
    deploy(admin, [uid])
    (email,) = delivered(app, smtp)
    _, _, _, link, token = parts(email)
    with app.app_context():
        message_id = db.get_session().scalar(select(OutboxMessage.id))
    page = admin.get(f"/outbox/{message_id}").text
    assert link not in page and token not in page
    assert "[removed after sending]" in page
    response = submit(
        admin, f"/outbox/{message_id}/resend", page=f"/outbox/{message_id}", follow_redirects=True
    )
    assert "it cannot be sent again. Deploy the user again instead." in response.text
    # The user's link itself still works: it was only forgotten by the outbox.
    assert (
        app.test_client().post(REDEEM, json={"link_token": link.rsplit("/", 1)[1]}).status_code
        == 200
    )


def test_the_document_combines_user_and_profile(app, admin, smtp):
    """R-DEP6: hosts, modes with their locked flags, codecs, DSCP, CA and credentials."""
    from certs import make_cert, pem

    from blade import mbg

    ca, _ = make_cert("Lab Root CA", ca=True)
    with app.app_context(), db.get_db(app).transaction() as s:
        connection = mbg.create_connection(s, "Edge", "mbg.example.com:8443")
        s.execute(
            update(Profile)
            .where(Profile.is_default)
            .values(
                use_teleworker="on_locked",
                use_softphone="on",
                mbg_connection_id=connection.id,
                webrtc_sip_host="custom",
                webrtc_sip_host_custom="webrtc.example.com",
                pbx_sip_host="custom_srv",
                pbx_sip_host_custom="_sip._tls.example.com",
                tw_codec="Opus",
                tw_dscp_sip=40,
                tw_tls_ca="custom",
                tw_custom_ca_pem=pem(ca).decode(),
                emergency_numbers="112,911",
            )
        )
    (uid,) = make_users(
        app,
        1,
        mbg_sip_password="tw-secret",
        mcs_password="mcs-secret",
        mcs_host="micollab.example.com",
    )
    deploy(admin, [uid])
    token = parts(delivered(app, smtp)[0])[3].rsplit("/", 1)[1]
    doc = app.test_client().post(REDEEM, json={"link_token": token}).json
    jsonschema.validate(doc, schema())
    assert doc["teleworker_mode"] == {"enabled": True, "locked": True}
    assert doc["softphone_mode"] == {"enabled": True, "locked": False}
    tw = doc["teleworker"]
    assert tw["sip_host"] == {"mode": "fqdn", "host": "mbg.example.com"}  # "MBG's FQDN"
    assert (tw["codec"], tw["dscp"]["sip"], tw["tls_ca"]) == ("Opus", 40, "custom")
    assert tw["custom_ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert (tw["username"], tw["password"]) == ("tw5000", "tw-secret")
    assert doc["pbx"]["sip_host"] == {"mode": "dns_srv", "host": "_sip._tls.example.com"}
    assert doc["pbx"]["sip_port"] is None  # the SRV records give it
    assert doc["webrtc"] == {"sip_host": "webrtc.example.com"}
    assert doc["micollab"] == {
        "host": "micollab.example.com",
        "username": "mcs0000",
        "password": "mcs-secret",
    }
    assert doc["general"]["emergency_numbers"] == ["112", "911"]


def test_secrets_never_reach_the_log(app, admin, smtp, caplog):
    """R-G1: passwords, PINs, tokens and credentials are not logged, even at DEBUG."""
    import logging

    caplog.set_level(logging.DEBUG)
    (uid,) = make_users(app, 1, deployment_pin=PIN, mbg_sip_password="tw-secret-42")
    deploy(admin, [uid])
    _, _, _, link, token = parts(delivered(app, smtp)[0])
    phone = app.test_client()
    phone.post(REDEEM, json={"link_token": link.rsplit("/", 1)[1], "pin": "999999"})
    doc = phone.post(REDEEM, json={"auth_token": token, "pin": PIN}).json
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (
        PIN,
        "999999",
        "tw-secret-42",
        link.rsplit("/", 1)[1],
        token,
        doc["client"]["credential"],
    ):
        assert secret not in logged
