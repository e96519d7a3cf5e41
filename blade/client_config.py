"""The configuration document a client downloads (R-DEP6; schema in client_config.schema.json)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from . import mbg
from .models import Deployment, DeploymentUser, Profile

SCHEMA_PATH = Path(__file__).parent / "client_config.schema.json"
SCHEMA_ID = "client-deployment/config/1"


def schema() -> dict[str, Any]:
    """The JSON Schema of the document."""
    return json.loads(SCHEMA_PATH.read_text())


def _mode(value: str) -> dict[str, Any]:
    return {"enabled": value != "off", "locked": value == "on_locked"}


def _group(profile: Profile, prefix: str) -> dict[str, Any]:
    g = {
        k: getattr(profile, f"{prefix}_{k}")
        for k in (
            "transport",
            "srtp_mode",
            "sip_port",
            "dtmf",
            "codec",
            "video_tx",
            "video_rx",
            "verify_tls",
            "tls_ca",
        )
    }
    g["dscp"] = {k: getattr(profile, f"{prefix}_dscp_{k}") for k in ("sip", "audio", "video")}
    g["custom_ca_pem"] = getattr(profile, f"{prefix}_custom_ca_pem")
    return g


def document(
    s: Session,
    user: DeploymentUser,
    profile: Profile,
    *,
    credential: str,
    base_url: str,
    deployment: Deployment | None,
    now: datetime,
) -> dict[str, Any]:
    """Everything the client needs: user, profile settings, hosts, credentials, how to poll."""
    fqdn = mbg.mbg_fqdn(s, profile)
    if profile.mbg_sip_host == "mbg_fqdn":
        mbg_sip = {"mode": "fqdn", "host": fqdn}
    else:
        mbg_sip = {
            "mode": "custom" if profile.mbg_sip_host == "custom" else "dns_srv",
            "host": profile.mbg_sip_host_custom,
        }
    webrtc = fqdn if profile.webrtc_sip_host == "mbg_fqdn" else profile.webrtc_sip_host_custom
    pbx = _group(profile, "pbx")
    pbx.update(
        type=profile.pbx_type,
        sip_host={"mode": "default", "host": user.pbx_sip_host or None}
        if profile.pbx_sip_host == "default"
        else {"mode": "dns_srv", "host": profile.pbx_sip_host_custom},
        username=user.pbx_sip_username or None,
        password=user.pbx_sip_password,
    )
    if profile.pbx_sip_host != "default":
        pbx["sip_port"] = None  # SRV records give the port
    teleworker = None
    if profile.teleworker_on:
        teleworker = _group(profile, "tw")
        teleworker.update(
            type=profile.tw_type,
            sip_host=mbg_sip,
            username=user.mbg_sip_username or None,
            password=user.mbg_sip_password,
        )
    return {
        "schema": SCHEMA_ID,
        "generated_at": now.isoformat(),
        "user": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "directory_number": user.directory_number,
            "email": user.email or None,
        },
        "profile": profile.name,
        "teleworker_mode": _mode(profile.use_teleworker),
        "softphone_mode": _mode(profile.use_softphone),
        "general": {
            "rtp_timeout_detection": profile.rtp_timeout_detection,
            "prefer_mobile_network": profile.prefer_mobile_network,
            "log_level": profile.log_level,
            "call_mode": profile.call_mode,
            "office_number": profile.office_number,
            "office_number_pause": profile.office_number_pause,
            "conference_access_code": profile.conference_access_code,
            "emergency_numbers": profile.emergency_numbers.split(","),
        },
        "pbx": pbx,
        "teleworker": teleworker,
        "webrtc": {"sip_host": webrtc},
        "micollab": {
            "host": user.mcs_host or None,
            "username": user.mcs_username or None,
            "password": user.mcs_password,
        },
        "client": {
            "credential": credential,
            "status_url": f"{base_url}/client-deployment/api/v1/client/status",
            "config_url": f"{base_url}/client-deployment/api/v1/client/config",
        },
        "deployment": None
        if deployment is None
        else {
            "downloads_left": deployment.downloads_left,
            "expires_at": deployment.expires_at.isoformat(),
        },
    }
