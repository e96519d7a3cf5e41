"""Deployment Profiles (SPEC R-P1-R-P3): every rule accepted and refused with its message,
hidden fields never stored, copy, delete, uniqueness and the shipped Default profile."""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime, timedelta

import pytest
from certs import damaged_ca, der, make_cert, pem
from helpers import csrf_token
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict

from blade.forms.profiles import ProfileForm, form_data
from blade.models import Profile
from server_manager_stub import db

NEW = "/client-deployment/profiles/new"


def valid(**changes) -> dict:
    """What a browser posts for a new profile with the defaults and a valid e-mail address."""
    data = {
        "name": "Sales",
        "use_teleworker": "off",
        "use_softphone": "on",
        "mbg_connection_id": "",
        "rtp_timeout_detection": "y",
        "deployment_email": "deploy@example.com",
        "log_level": "error",
        "call_mode": "audio",
        "office_number": "",
        "office_number_pause": "0",
        "config_download_host": "micollab_fqdn",
        "config_download_host_custom": "",
        "mbg_sip_host": "mbg_fqdn",
        "mbg_sip_host_custom": "",
        "webrtc_sip_host": "mbg_fqdn",
        "webrtc_sip_host_custom": "",
        "pbx_sip_host": "default",
        "pbx_sip_host_custom": "",
        "conference_access_code": "",
        "emergency_numbers": "911,112,999,000,110,119",
        "pbx_type": "mivb",
        "tw_type": "mbg",
    }
    for prefix in ("pbx", "tw"):
        data.update(
            {
                f"{prefix}_transport": "tls",
                f"{prefix}_srtp_mode": "off",
                f"{prefix}_sip_port": "",
                f"{prefix}_dtmf": "rfc2833",
                f"{prefix}_codec": "G722",
                f"{prefix}_video_tx": "768",
                f"{prefix}_video_rx": "768",
                f"{prefix}_dscp_sip": "24",
                f"{prefix}_dscp_audio": "46",
                f"{prefix}_dscp_video": "34",
                f"{prefix}_verify_tls": "y",
                f"{prefix}_tls_ca": "public",
            }
        )
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def post(client, data, url=NEW, **kwargs):
    data = {**data, "csrf_token": csrf_token(client, url)}
    return client.post(url, data=data, content_type="multipart/form-data", **kwargs)


def stored(app, name="Sales") -> Profile | None:
    with app.app_context():
        return db.get_session().scalars(select(Profile).where(Profile.name == name)).one_or_none()


def count(app) -> int:
    with app.app_context():
        return db.get_session().scalar(select(func.count()).select_from(Profile))


# --- every rule: accepted values -------------------------------------------------------------

ACCEPTED = [
    ({"name": "Site B – MBG 2"}, "name", "Site B – MBG 2"),
    ({"use_softphone": "on_locked"}, "use_softphone", "on_locked"),
    ({"use_softphone": "off"}, "use_softphone", "off"),
    ({"rtp_timeout_detection": None}, "rtp_timeout_detection", False),
    ({"prefer_mobile_network": "y"}, "prefer_mobile_network", True),
    ({"override_user_email": "y"}, "override_user_email", True),
    ({"deployment_email": " Ops@Example.COM "}, "deployment_email", "Ops@example.com"),
    ({"log_level": "debug"}, "log_level", "debug"),
    ({"call_mode": "video"}, "call_mode", "video"),
    ({"office_number": "+4930*1#"}, "office_number", "+4930*1#"),
    ({"office_number": ""}, "office_number", None),
    ({"office_number_pause": "30"}, "office_number_pause", 30),
    (
        {"config_download_host": "custom", "config_download_host_custom": "Deploy.Example.com"},
        "config_download_host_custom",
        "deploy.example.com",
    ),
    (
        {"webrtc_sip_host": "custom", "webrtc_sip_host_custom": "mbg.example.com"},
        "webrtc_sip_host_custom",
        "mbg.example.com",
    ),
    (
        {"pbx_sip_host": "custom_srv", "pbx_sip_host_custom": "_sip._tls.example.com"},
        "pbx_sip_host_custom",
        "_sip._tls.example.com",
    ),
    (
        {"pbx_sip_host": "custom_srv", "pbx_sip_host_custom": "pbx.example.com"},
        "pbx_sip_host_custom",
        "pbx.example.com",
    ),
    ({"conference_access_code": "*55#"}, "conference_access_code", "*55#"),
    ({"emergency_numbers": "911"}, "emergency_numbers", "911"),
    ({"pbx_type": "mv5000"}, "pbx_type", "mv5000"),
    ({"pbx_codec": "Opus", "pbx_type": "mivb"}, "pbx_codec", "Opus"),
    ({"pbx_codec": "Opus", "pbx_type": "mxone"}, "pbx_codec", "Opus"),
    ({"pbx_codec": "PCMA", "pbx_type": "mvo400"}, "pbx_codec", "PCMA"),
    ({"pbx_transport": "tcp"}, "pbx_transport", "tcp"),
    ({"pbx_srtp_mode": "mandatory"}, "pbx_srtp_mode", "mandatory"),
    ({"pbx_sip_port": "5070"}, "pbx_sip_port", 5070),
    ({"pbx_sip_port": ""}, "pbx_sip_port", 5061),
    ({"pbx_sip_port": "", "pbx_transport": "tcp"}, "pbx_sip_port", 5060),
    ({"pbx_dtmf": "sip_info"}, "pbx_dtmf", "sip_info"),
    ({"pbx_video_tx": "1536"}, "pbx_video_tx", 1536),
    ({"pbx_video_rx": "128"}, "pbx_video_rx", 128),
    ({"pbx_video_tx": "850"}, "pbx_video_tx", 768),
    ({"pbx_video_tx": "1280"}, "pbx_video_tx", 1024),
    ({"pbx_video_rx": "100"}, "pbx_video_rx", 128),
    ({"pbx_dscp_sip": "EF"}, "pbx_dscp_sip", 46),
    ({"pbx_dscp_audio": "af41"}, "pbx_dscp_audio", 34),
    ({"pbx_dscp_video": "CS7"}, "pbx_dscp_video", 56),
    ({"pbx_dscp_video": "63"}, "pbx_dscp_video", 63),
    ({"pbx_dscp_sip": "0"}, "pbx_dscp_sip", 0),
    ({"pbx_verify_tls": None}, "pbx_verify_tls", False),
    ({"pbx_tls_ca": "mitel"}, "pbx_tls_ca", "mitel"),
]


@pytest.mark.parametrize(
    ("changes", "column", "expected"), ACCEPTED, ids=[f"{c}={e}" for _, c, e in ACCEPTED]
)
def test_accepted_values_are_stored(app, admin, changes, column, expected):
    data = valid(**changes)
    response = post(admin, data)
    assert response.status_code == 303, response.text
    profile = stored(app, data["name"])
    assert getattr(profile, column) == expected


# --- every rule: refused values, with the message shown beside the field ---------------------

REFUSED = [
    ({"name": ""}, "name", "Enter a name for the profile."),
    ({"name": "x" * 65}, "name", "A profile name has at most 64 characters."),
    ({"name": "default"}, "name", "A profile named 'default' already exists"),
    ({"name": "  DEFAULT "}, "name", "A profile named 'DEFAULT' already exists"),
    ({"use_teleworker": "sometimes"}, "use_teleworker", "Not a valid choice"),
    (
        {"use_teleworker": "on"},
        "mbg_connection_id",
        "Use Teleworker needs an MBG, and none is connected yet",
    ),
    ({"use_softphone": "yes"}, "use_softphone", "Not a valid choice"),
    ({"mbg_connection_id": "7"}, "mbg_connection_id", "Not a valid choice"),
    ({"deployment_email": ""}, "deployment_email", "Enter the deployment e-mail address."),
    (
        {"deployment_email": "deploy-at-example.com"},
        "deployment_email",
        "This is not a valid e-mail address",
    ),
    ({"log_level": "verbose"}, "log_level", "Not a valid choice"),
    ({"call_mode": "hologram"}, "call_mode", "Not a valid choice"),
    (
        {"office_number": "12a4"},
        "office_number",
        "Use digits, * and #, optionally starting with +.",
    ),
    ({"office_number": "12+34"}, "office_number", "Use digits, * and #, optionally starting"),
    (
        {"office_number_pause": "31"},
        "office_number_pause",
        "Enter the pause in seconds from 0 to 30.",
    ),
    (
        {"office_number_pause": "-1"},
        "office_number_pause",
        "Enter the pause in seconds from 0 to 30.",
    ),
    ({"office_number_pause": "two"}, "office_number_pause", "Enter the pause in whole seconds"),
    (
        {"office_number_pause": ""},
        "office_number_pause",
        "Enter the pause in seconds from 0 to 30.",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "10.0.0.5"},
        "config_download_host_custom",
        "An IP address is not allowed here",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "2001:db8::5"},
        "config_download_host_custom",
        "An IP address is not allowed here",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": ""},
        "config_download_host_custom",
        "Enter the FQDN clients download their configuration from.",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "deploy"},
        "config_download_host_custom",
        "Enter a fully qualified name with a domain",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "bad_host.example.com"},
        "config_download_host_custom",
        "'bad_host' is not a valid part of a host name",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "-a.example.com"},
        "config_download_host_custom",
        "'-a' is not a valid part of a host name",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "a..example.com"},
        "config_download_host_custom",
        "cannot have empty parts",
    ),
    (
        {
            "config_download_host": "custom",
            "config_download_host_custom": "https://deploy.example.com/x",
        },
        "config_download_host_custom",
        "Enter a host name only",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "deploy.example.com:443"},
        "config_download_host_custom",
        "Enter a host name only",
    ),
    (
        {"config_download_host": "custom", "config_download_host_custom": "a" * 64 + ".com"},
        "config_download_host_custom",
        "is not a valid part of a host name",
    ),
    ({"config_download_host": "elsewhere"}, "config_download_host", "Not a valid choice"),
    (
        {"webrtc_sip_host": "custom", "webrtc_sip_host_custom": "192.0.2.1"},
        "webrtc_sip_host_custom",
        "the WebRTC softphone cannot connect to an IP address",
    ),
    (
        {"webrtc_sip_host": "custom", "webrtc_sip_host_custom": ""},
        "webrtc_sip_host_custom",
        "Enter the FQDN of the MBG for WebRTC clients.",
    ),
    (
        {"pbx_sip_host": "custom_srv", "pbx_sip_host_custom": "10.1.1.1"},
        "pbx_sip_host_custom",
        "An IP address is not allowed here: enter the DNS name",
    ),
    (
        {"pbx_sip_host": "custom_srv", "pbx_sip_host_custom": ""},
        "pbx_sip_host_custom",
        "Enter the DNS SRV name of the PBX.",
    ),
    ({"conference_access_code": "12ab"}, "conference_access_code", "Use digits, * and # only."),
    ({"emergency_numbers": ""}, "emergency_numbers", "Enter at least one emergency number"),
    ({"emergency_numbers": "911, 112"}, "emergency_numbers", "with commas only, without spaces"),
    ({"emergency_numbers": "911,,112"}, "emergency_numbers", "There is an empty entry"),
    ({"emergency_numbers": "911,112,911"}, "emergency_numbers", "911 is listed twice."),
    ({"emergency_numbers": "911,12#4"}, "emergency_numbers", "digits only; '12#4' is not"),
    ({"emergency_numbers": "911;112"}, "emergency_numbers", "digits only; '911;112' is not"),
    ({"pbx_type": "asterisk"}, "pbx_type", "Not a valid choice"),
    (
        {"pbx_codec": "Opus", "pbx_type": "mv5000"},
        "pbx_codec",
        "Opus is supported only with MiVoice Business or MiVoice MX-ONE, not with MiVoice 5000.",
    ),
    ({"pbx_codec": "Opus", "pbx_type": "mvo400"}, "pbx_codec", "not with MiVoice Office 400."),
    ({"pbx_codec": "AMR"}, "pbx_codec", "Not a valid choice"),
    ({"pbx_transport": "sctp"}, "pbx_transport", "Not a valid choice"),
    ({"pbx_srtp_mode": "always"}, "pbx_srtp_mode", "Not a valid choice"),
    ({"pbx_sip_port": "0"}, "pbx_sip_port", "Enter a SIP port from 1 to 65535."),
    ({"pbx_sip_port": "65536"}, "pbx_sip_port", "Enter a SIP port from 1 to 65535."),
    ({"pbx_sip_port": "50a"}, "pbx_sip_port", "Enter the SIP port as a whole number"),
    ({"pbx_dtmf": "inband"}, "pbx_dtmf", "Not a valid choice"),
    ({"pbx_video_tx": "fast"}, "pbx_video_tx", "Enter the rate in kbit/s as a whole number"),
    ({"pbx_video_tx": "850.5"}, "pbx_video_tx", "Enter the rate in kbit/s as a whole number"),
    ({"pbx_video_rx": "0"}, "pbx_video_rx", "must be above 0 kbit/s"),
    ({"pbx_video_rx": ""}, "pbx_video_rx", "Enter the maximum video receive rate in kbit/s"),
    ({"pbx_dscp_sip": "64"}, "pbx_dscp_sip", "Enter a DSCP value from 0 to 63 or a class name"),
    ({"pbx_dscp_audio": "CS8"}, "pbx_dscp_audio", "Enter a DSCP value from 0 to 63"),
    ({"pbx_dscp_video": "AF44"}, "pbx_dscp_video", "Enter a DSCP value from 0 to 63"),
    ({"pbx_dscp_video": ""}, "pbx_dscp_video", "Enter a DSCP value from 0 to 63"),
    ({"pbx_dscp_sip": "-1"}, "pbx_dscp_sip", "Enter a DSCP value from 0 to 63"),
    ({"pbx_tls_ca": "selfmade"}, "pbx_tls_ca", "Not a valid choice"),
    ({"pbx_tls_ca": "custom"}, "pbx_custom_ca", "Upload the CA certificate (PEM), or choose"),
]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    REFUSED,
    ids=[f"{f}:{list(c.values())[-1]!s:.20}" for c, f, _ in REFUSED],
)
def test_refused_values_show_the_message_beside_the_field_and_store_nothing(
    app, admin, changes, field, message
):
    before = count(app)
    response = post(admin, valid(**changes))
    assert response.status_code == 422
    assert "The profile was not saved" in response.text
    beside = response.text.split(f'id="{field}-error">')
    assert len(beside) == 2, f"no error beside {field}"
    assert message in html.unescape(beside[1].split("</p>")[0])
    assert count(app) == before


def test_a_modify_that_fails_changes_nothing(app, admin):
    response = post(
        admin,
        valid(name="Default", emergency_numbers="911,911"),
        url="/client-deployment/profiles/1",
    )
    assert response.status_code == 422
    profile = stored(app, "Default")
    assert profile.emergency_numbers == "911,112,999,000,110,119"
    assert profile.deployment_email == ""


# --- notices: the saved form says what was changed -------------------------------------------


def test_a_snapped_video_rate_is_reported_after_saving(app, admin):
    response = post(admin, valid(pbx_video_tx="850", pbx_video_rx="1280"), follow_redirects=True)
    assert "Max video TX rate (kbit/s): 850 was changed to 768" in response.text
    assert "Max video RX rate (kbit/s): 1280 was changed to 1024" in response.text
    profile = stored(app)
    assert (profile.pbx_video_tx, profile.pbx_video_rx) == (768, 1024)
    page = admin.get(f"/client-deployment/profiles/{profile.id}").text
    assert 'value="768"' in page and "was changed" not in page


def test_udp_is_accepted_with_a_warning(app, admin):
    response = post(admin, valid(pbx_transport="udp"), follow_redirects=True)
    assert "UDP is accepted, but TLS is preferable" in response.text
    assert stored(app).pbx_transport == "udp"


# --- hidden fields are ignored, never stored -------------------------------------------------

HIDDEN = [
    ({"pbx_transport": "tcp", "pbx_srtp_mode": "mandatory"}, "pbx_srtp_mode", "off"),
    ({"pbx_transport": "udp", "pbx_srtp_mode": "optional"}, "pbx_srtp_mode", "off"),
    ({"config_download_host_custom": "deploy.example.com"}, "config_download_host_custom", None),
    ({"config_download_host_custom": "10.0.0.5"}, "config_download_host_custom", None),
    ({"webrtc_sip_host_custom": "192.0.2.1"}, "webrtc_sip_host_custom", None),
    ({"pbx_sip_host_custom": "10.1.1.1"}, "pbx_sip_host_custom", None),
    (
        {
            "pbx_sip_host": "custom_srv",
            "pbx_sip_host_custom": "example.com",
            "pbx_sip_port": "99999",
        },
        "pbx_sip_port",
        5061,
    ),
    ({"mbg_sip_host": "custom", "mbg_sip_host_custom": "not valid!"}, "mbg_sip_host_custom", None),
    ({"mbg_sip_host": "custom_srv"}, "mbg_sip_host", "mbg_fqdn"),
    ({"tw_transport": "tcp", "tw_srtp_mode": "mandatory"}, "tw_transport", "tls"),
    ({"tw_codec": "Opus", "pbx_type": "mv5000"}, "tw_codec", "G722"),
    ({"tw_video_tx": "huge", "tw_dscp_sip": "999"}, "tw_video_tx", 768),
    ({"tw_video_tx": "huge", "tw_dscp_sip": "999"}, "tw_dscp_sip", 24),
    ({"tw_sip_port": "5099"}, "tw_sip_port", 5061),
    ({"tw_verify_tls": None}, "tw_verify_tls", True),
]


@pytest.mark.parametrize(
    ("changes", "column", "expected"), HIDDEN, ids=[f"{c}" for _, c, _ in HIDDEN]
)
def test_a_hidden_field_posted_with_a_value_is_not_stored(app, admin, changes, column, expected):
    response = post(admin, valid(**changes))
    assert response.status_code == 303, response.text
    assert getattr(stored(app), column) == expected


def test_a_ca_upload_with_a_public_ca_choice_is_ignored(app, admin):
    ca, _ = make_cert("Lab Root CA", ca=True)
    data = valid(pbx_tls_ca="public")
    data["pbx_custom_ca"] = (io.BytesIO(pem(ca)), "ca.pem")
    assert post(admin, data).status_code == 303
    assert stored(app).pbx_custom_ca_pem is None


def test_conditional_fields_carry_their_declaration_for_the_page_script(admin):
    page = admin.get(NEW).text
    assert (
        'data-hidden-unless="{&#34;field&#34;: &#34;pbx_transport&#34;, &#34;values&#34;: '
        '[&#34;tls&#34;]}"' in page
    )
    teleworker = page.split("<legend>Teleworker settings (MBG)</legend>")[0].rsplit("<fieldset", 1)[
        1
    ]
    assert "use_teleworker" in teleworker and "on_locked" in teleworker


# --- custom CA upload ------------------------------------------------------------------------


def _with_ca(data: bytes, filename: str = "ca.pem", **changes) -> dict:
    form = valid(pbx_tls_ca="custom", **changes)
    form["pbx_custom_ca"] = (io.BytesIO(data), filename)
    return form


def test_a_custom_ca_is_stored_and_shown_with_subject_and_expiry(app, admin):
    ca, _ = make_cert("Lab Root CA", ca=True, days=400)
    response = post(admin, _with_ca(pem(ca).replace(b"\n", b"\r\n")), follow_redirects=True)
    assert "Profile &#39;Sales&#39; created." in response.text
    assert "CN=Lab Root CA" in response.text
    assert ca.not_valid_after_utc.strftime("%Y-%m-%d") in response.text
    profile = stored(app)
    assert profile.pbx_custom_ca_pem.startswith("-----BEGIN CERTIFICATE-----")
    # Saving again without a new upload keeps it.
    response = post(
        admin, valid(pbx_tls_ca="custom"), url=f"/client-deployment/profiles/{profile.id}"
    )
    assert response.status_code == 303
    assert stored(app).pbx_custom_ca_pem == profile.pbx_custom_ca_pem
    # Choosing another CA type drops it.
    post(admin, valid(pbx_tls_ca="mitel"), url=f"/client-deployment/profiles/{profile.id}")
    assert stored(app).pbx_custom_ca_pem is None


def _bad_certs():
    ca, ca_key = make_cert("Lab Root CA", ca=True)
    leaf, _ = make_cert("sip.example.com", ca=False, issuer=(ca, ca_key))
    old, _ = make_cert("Old CA", ca=True, start=datetime.now(UTC) - timedelta(days=800), days=365)
    future, _ = make_cert("Future CA", ca=True, start=datetime.now(UTC) + timedelta(days=10))
    other, _ = make_cert("Other CA", ca=True)
    return [
        (pem(leaf), "is not a CA certificate"),
        (der(ca), "This is a DER (binary) certificate"),
        (b"hello, I am not a certificate", "This is not a PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot be read"),
        (pem(old), "This CA certificate expired on"),
        (pem(future), "is not valid before"),
        (pem(ca) + pem(other), "Upload exactly one CA certificate; this file holds 2."),
        (b"A" * 70000, "too large for a CA certificate"),
        (pem(damaged_ca()), "one of its extensions is damaged"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    _bad_certs(),
    ids=[
        "not-a-ca",
        "der",
        "garbage",
        "damaged",
        "expired",
        "not-yet-valid",
        "two-certs",
        "too-large",
        "bad-extension",
    ],
)
def test_a_bad_ca_upload_is_refused_with_a_clear_message(app, admin, content, message):
    response = post(admin, _with_ca(content))
    assert response.status_code == 422
    error = response.text.split('id="pbx_custom_ca-error">')[1].split("</p>")[0]
    assert message in html.unescape(error)
    assert stored(app) is None


# --- the Teleworker group's rules (teleworker needs an MBG connection) -----------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"mbg_sip_host": "custom", "mbg_sip_host_custom": "mbg.example.com"}, None, None),
        ({"mbg_sip_host": "custom", "mbg_sip_host_custom": "203.0.113.9"}, None, None),
        ({"mbg_sip_host": "custom", "mbg_sip_host_custom": "2001:db8::9"}, None, None),
        ({"mbg_sip_host": "custom_srv", "mbg_sip_host_custom": "example.com"}, None, None),
        (
            {"mbg_sip_host": "custom", "mbg_sip_host_custom": ""},
            "mbg_sip_host_custom",
            "Enter the MBG SIP host.",
        ),
        (
            {"mbg_sip_host": "custom", "mbg_sip_host_custom": "300.1.1.1"},
            "mbg_sip_host_custom",
            "This is not a valid IPv4 address.",
        ),
        (
            {"mbg_sip_host": "custom_srv", "mbg_sip_host_custom": "203.0.113.9"},
            "mbg_sip_host_custom",
            "An IP address is not allowed here",
        ),
        (
            {"mbg_connection_id": ""},
            "mbg_connection_id",
            "Choose the MBG that teleworker clients register through.",
        ),
        ({"tw_codec": "Opus", "pbx_type": "mv5000"}, "tw_codec", "Opus is supported only with"),
        ({"tw_dscp_sip": "64"}, "tw_dscp_sip", "Enter a DSCP value from 0 to 63"),
        ({"tw_transport": "tcp", "tw_srtp_mode": "mandatory"}, None, None),
    ],
)
def test_teleworker_rules_with_an_mbg_connection(app, changes, field, message):
    """Checked on the form itself: the MBG connection choice arrives with that feature."""
    data = valid(**{"use_teleworker": "on", "mbg_connection_id": "1", **changes})
    with app.test_request_context(method="POST", data=MultiDict(data)):
        form = ProfileForm(
            session=db.get_session(), mbg_choices=[(1, "MBG one")], meta={"csrf": False}
        )
        ok = form.validate()
        if field is None:
            assert ok, form.errors
            values = form.values()
            if changes.get("tw_transport") == "tcp":
                assert values["tw_srtp_mode"] == "off"
            return
        assert not ok
        assert any(message in e for e in form.errors[field]), form.errors


# --- list, copy, delete, the Default profile -------------------------------------------------


def test_the_default_profile_is_shipped_by_the_migration_with_the_spec_defaults(app, admin):
    profile = stored(app, "Default")
    assert profile.is_default
    assert (profile.rtp_timeout_detection, profile.log_level, profile.call_mode) == (
        True,
        "error",
        "audio",
    )
    assert profile.webrtc_sip_host == "mbg_fqdn"
    assert profile.emergency_numbers == "911,112,999,000,110,119"
    for prefix in ("pbx", "tw"):
        assert getattr(profile, f"{prefix}_transport") == "tls"
        assert getattr(profile, f"{prefix}_sip_port") == 5061
        assert getattr(profile, f"{prefix}_dtmf") == "rfc2833"
        assert (getattr(profile, f"{prefix}_video_tx"), getattr(profile, f"{prefix}_video_rx")) == (
            768,
            768,
        )
        assert [getattr(profile, f"{prefix}_dscp_{k}") for k in ("sip", "audio", "video")] == [
            24,
            46,
            34,
        ]
    page = admin.get("/client-deployment/profiles").text
    assert "Default" in page and "Needs a deployment e-mail address" in page


def test_the_list_shows_each_profile_with_its_columns(app, admin):
    post(admin, valid(name="Branch", pbx_type="mxone", use_softphone="on_locked"))
    page = admin.get("/client-deployment/profiles").text
    row = page.split(">Branch</a>")[1].split("</tr>")[0]
    assert "MiVoice MX-ONE" in row and "on (locked)" in row and "off" in row


def test_copy_prefills_a_new_profile_named_copy_of(app, admin):
    ca, _ = make_cert("Lab Root CA", ca=True)
    assert post(admin, _with_ca(pem(ca), name="Branch", pbx_codec="PCMU")).status_code == 303
    source = stored(app, "Branch")
    page = admin.get(f"{NEW}?copy={source.id}").text
    assert 'value="Copy of Branch"' in page
    form = valid(
        name="Copy of Branch", pbx_codec="PCMU", pbx_tls_ca="custom", copy_from=str(source.id)
    )
    assert post(admin, form, url=f"{NEW}?copy={source.id}").status_code == 303
    copy = stored(app, "Copy of Branch")
    assert copy.pbx_codec == "PCMU"
    assert copy.pbx_custom_ca_pem == source.pbx_custom_ca_pem  # the CA came along
    assert 'value="Copy of Branch (2)"' in admin.get(f"{NEW}?copy={source.id}").text
    assert 'value="Copy of Default"' in admin.get(f"{NEW}?copy=1").text
    assert admin.get(f"{NEW}?copy=999").status_code == 404


def test_the_default_profile_cannot_be_deleted(app, admin):
    response = post(admin, {}, url="/client-deployment/profiles/1/delete")
    assert response.status_code == 303
    assert "cannot be deleted" in admin.get("/client-deployment/profiles").text
    assert stored(app, "Default") is not None


def test_another_profile_can_be_deleted(app, admin):
    post(admin, valid(name="Temporary"))
    profile = stored(app, "Temporary")
    page = admin.get("/client-deployment/profiles").text
    assert f"/client-deployment/profiles/{profile.id}/delete" in page
    response = admin.post(
        f"/client-deployment/profiles/{profile.id}/delete",
        data={"csrf_token": csrf_token(admin, "/client-deployment/profiles")},
        follow_redirects=True,
    )
    assert "Profile &#39;Temporary&#39; deleted." in response.text
    assert stored(app, "Temporary") is None


def test_modify_keeps_the_name_unique_but_allows_its_own(app, admin):
    post(admin, valid(name="Branch"))
    profile = stored(app, "Branch")
    url = f"/client-deployment/profiles/{profile.id}"
    assert post(admin, valid(name="BRANCH"), url=url).status_code == 303
    assert stored(app, "BRANCH").id == profile.id
    response = post(admin, valid(name="Default"), url=url)
    assert "A profile named &#39;Default&#39; already exists" in response.text


def test_unknown_profiles_are_404(admin):
    assert admin.get("/client-deployment/profiles/999").status_code == 404
    assert post(admin, {}, url="/client-deployment/profiles").status_code == 405


def test_stored_profiles_round_trip_through_the_form(app):
    """What the form stores, the form accepts again unchanged (Modify shows it as it is)."""
    with app.test_request_context():
        s = db.get_session()
        profile = s.get(Profile, 1)
        data = form_data(profile) | {"deployment_email": "x@example.com"}
        flat = {
            k: ("y" if v is True else "" if v is None or v is False else str(v))
            for k, v in data.items()
        }
        flat = {k: v for k, v in flat.items() if v != "" or not isinstance(data[k], bool)}
    with app.test_request_context(method="POST", data=MultiDict(flat)):
        form = ProfileForm(session=db.get_session(), profile=profile, meta={"csrf": False})
        assert form.validate(), form.errors
        values = form.values()
    for key, value in values.items():
        expected = "x@example.com" if key == "deployment_email" else getattr(profile, key)
        assert value == expected, key


def test_file_storage_is_what_the_form_reads(app):
    """A FileStorage that is empty (no file chosen) counts as no upload."""
    data = MultiDict(valid(pbx_tls_ca="public"))
    data["pbx_custom_ca"] = FileStorage(io.BytesIO(b""), filename="")
    with app.test_request_context(method="POST", data=data):
        form = ProfileForm(session=db.get_session(), meta={"csrf": False})
        assert form.validate(), form.errors
