"""Tables of the Client Deployment blade (prefixed cd_)."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server_manager_stub.db import Base
from server_manager_stub.secrets import EncryptedBytes, EncryptedText

from . import choices as c

GROUPS = ("pbx", "tw")  # Softphone settings (PBX) and Teleworker settings (MBG)


def _group_checks(prefix: str) -> list[CheckConstraint]:
    return [
        CheckConstraint(c.check(f"{prefix}_transport", c.TRANSPORTS), name=f"{prefix}_transport"),
        CheckConstraint(c.check(f"{prefix}_srtp_mode", c.SRTP_MODES), name=f"{prefix}_srtp_mode"),
        CheckConstraint(c.check(f"{prefix}_dtmf", c.DTMF_METHODS), name=f"{prefix}_dtmf"),
        CheckConstraint(c.check(f"{prefix}_codec", c.AUDIO_CODECS), name=f"{prefix}_codec"),
        CheckConstraint(c.check(f"{prefix}_tls_ca", c.TLS_CAS), name=f"{prefix}_tls_ca"),
        CheckConstraint(f"{prefix}_sip_port BETWEEN 1 AND 65535", name=f"{prefix}_sip_port"),
        CheckConstraint(
            f"{prefix}_video_tx IN (1536, 1024, 768, 512, 384, 192, 128)", name=f"{prefix}_video_tx"
        ),
        CheckConstraint(
            f"{prefix}_video_rx IN (1536, 1024, 768, 512, 384, 192, 128)", name=f"{prefix}_video_rx"
        ),
        *(
            CheckConstraint(f"{prefix}_dscp_{k} BETWEEN 0 AND 63", name=f"{prefix}_dscp_{k}")
            for k in ("sip", "audio", "video")
        ),
    ]


class Profile(Base):
    """A Deployment Profile: SIP, softphone and teleworker settings shared by its users."""

    __tablename__ = "cd_profile"
    __table_args__ = (
        CheckConstraint(c.check("use_teleworker", c.TELEWORKER_MODES), name="use_teleworker"),
        CheckConstraint(c.check("use_softphone", c.SOFTPHONE_MODES), name="use_softphone"),
        CheckConstraint(c.check("log_level", c.LOG_LEVELS), name="log_level"),
        CheckConstraint(c.check("call_mode", c.CALL_MODES), name="call_mode"),
        CheckConstraint(
            c.check("config_download_host", c.CONFIG_DOWNLOAD_HOSTS), name="config_download_host"
        ),
        CheckConstraint(c.check("mbg_sip_host", c.MBG_SIP_HOSTS), name="mbg_sip_host"),
        CheckConstraint(c.check("webrtc_sip_host", c.WEBRTC_SIP_HOSTS), name="webrtc_sip_host"),
        CheckConstraint(c.check("pbx_sip_host", c.PBX_SIP_HOSTS), name="pbx_sip_host"),
        CheckConstraint(c.check("pbx_type", c.PBX_TYPES), name="pbx_type"),
        CheckConstraint(c.check("tw_type", c.TELEWORKER_TYPES), name="tw_type"),
        CheckConstraint("office_number_pause BETWEEN 0 AND 30", name="office_number_pause"),
        *_group_checks("pbx"),
        *_group_checks("tw"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Lower-cased name: makes "Sales" and "sales" the same name for the unique index.
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    # General settings
    use_teleworker: Mapped[str] = mapped_column(String(10))
    use_softphone: Mapped[str] = mapped_column(String(10))
    # A connection in use by a profile cannot be deleted (RESTRICT).
    mbg_connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("cd_mbg_connection.id", ondelete="RESTRICT"), index=True
    )
    rtp_timeout_detection: Mapped[bool]
    prefer_mobile_network: Mapped[bool]
    override_user_email: Mapped[bool]
    deployment_email: Mapped[str] = mapped_column(String(320))
    log_level: Mapped[str] = mapped_column(String(10))
    call_mode: Mapped[str] = mapped_column(String(10))
    office_number: Mapped[str | None] = mapped_column(String(32))
    office_number_pause: Mapped[int]
    config_download_host: Mapped[str] = mapped_column(String(16))
    config_download_host_custom: Mapped[str | None] = mapped_column(String(253))
    mbg_sip_host: Mapped[str] = mapped_column(String(16))
    mbg_sip_host_custom: Mapped[str | None] = mapped_column(String(253))
    webrtc_sip_host: Mapped[str] = mapped_column(String(16))
    webrtc_sip_host_custom: Mapped[str | None] = mapped_column(String(253))
    pbx_sip_host: Mapped[str] = mapped_column(String(16))
    pbx_sip_host_custom: Mapped[str | None] = mapped_column(String(253))
    conference_access_code: Mapped[str | None] = mapped_column(String(32))
    emergency_numbers: Mapped[str] = mapped_column(String(255))

    # Softphone settings (PBX)
    pbx_type: Mapped[str] = mapped_column(String(10))
    pbx_transport: Mapped[str] = mapped_column(String(3))
    pbx_srtp_mode: Mapped[str] = mapped_column(String(10))
    pbx_sip_port: Mapped[int]
    pbx_dtmf: Mapped[str] = mapped_column(String(10))
    pbx_codec: Mapped[str] = mapped_column(String(8))
    pbx_video_tx: Mapped[int]
    pbx_video_rx: Mapped[int]
    pbx_dscp_sip: Mapped[int]
    pbx_dscp_audio: Mapped[int]
    pbx_dscp_video: Mapped[int]
    pbx_verify_tls: Mapped[bool]
    pbx_tls_ca: Mapped[str] = mapped_column(String(10))
    pbx_custom_ca_pem: Mapped[str | None] = mapped_column(Text)

    # Teleworker settings (MBG)
    tw_type: Mapped[str] = mapped_column(String(10))
    tw_transport: Mapped[str] = mapped_column(String(3))
    tw_srtp_mode: Mapped[str] = mapped_column(String(10))
    tw_sip_port: Mapped[int]
    tw_dtmf: Mapped[str] = mapped_column(String(10))
    tw_codec: Mapped[str] = mapped_column(String(8))
    tw_video_tx: Mapped[int]
    tw_video_rx: Mapped[int]
    tw_dscp_sip: Mapped[int]
    tw_dscp_audio: Mapped[int]
    tw_dscp_video: Mapped[int]
    tw_verify_tls: Mapped[bool]
    tw_tls_ca: Mapped[str] = mapped_column(String(10))
    tw_custom_ca_pem: Mapped[str | None] = mapped_column(Text)

    @property
    def teleworker_on(self) -> bool:
        """True when clients register through the MBG (on or on (locked))."""
        return self.use_teleworker in ("on", "on_locked")


class MbgConnection(Base):
    """A connection to an MBG's web service, authorised for a year (R-MBG1-R-MBG3)."""

    __tablename__ = "cd_mbg_connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(262))  # host or IP, optionally :port
    created_at: Mapped[datetime]
    # The pending authorisation request: Token ID shown to administrators, secret kept.
    token_id: Mapped[str | None] = mapped_column(String(100))
    request_secret: Mapped[str | None] = mapped_column(EncryptedText)
    authorize_url: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    verified: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    is_local: Mapped[bool] = mapped_column(default=False)

    def days_left(self, now: datetime) -> int | None:
        """Days until the authorisation expires, rounded up (0 or less once expired)."""
        if not self.verified or self.expires_at is None:
            return None
        return math.ceil((self.expires_at - now).total_seconds() / 86400)

    def is_usable(self, now: datetime) -> bool:
        """True while verified and not expired."""
        return bool(self.verified and self.expires_at and self.expires_at > now)


def _key(length: int) -> String:
    """A lower-cased shadow of a text column for sorting and prefix search: binary ("C")
    collation on PostgreSQL so that ranges and ORDER BY use the index the same way as SQLite."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


USER_SOURCES = (
    ("manual", "Created here"),
    ("csv", "CSV import"),
    ("mbg", "MBG"),
    ("directory", "User directory"),
)
# Text columns that have a lower-cased shadow column `<name>_key`.
KEYED_COLUMNS = ("first_name", "last_name", "email", "mbg_sip_username", "mcs_username")


class DeploymentUser(Base):
    """A user of the Client Deployment: who they are, their SIP accounts and deployment state."""

    __tablename__ = "cd_user"
    __table_args__ = (
        CheckConstraint(c.check("source", USER_SOURCES), name="source"),
        UniqueConstraint("source_connection_id", "source_record_id"),
        Index("ix_cd_user_last_name_key_id", "last_name_key", "id"),
        Index("ix_cd_user_first_name_key_id", "first_name_key", "id"),
        Index("ix_cd_user_email_key_id", "email_key", "id"),
        Index("ix_cd_user_mbg_sip_username_key_id", "mbg_sip_username_key", "id"),
        Index("ix_cd_user_mcs_username_key_id", "mcs_username_key", "id"),
        Index("ix_cd_user_directory_number_id", "directory_number", "id"),
        Index("ix_cd_user_profile_id_id", "profile_id", "id"),
        Index("ix_cd_user_deployed_at_id", "deployed_at", "id"),
        Index("ix_cd_user_downloaded_at_id", "downloaded_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("cd_profile.id", ondelete="RESTRICT"))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100))
    directory_number: Mapped[str] = mapped_column(_key(32), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    pbx_sip_host: Mapped[str] = mapped_column(String(253), default="")
    pbx_sip_username: Mapped[str] = mapped_column(String(64), default="")
    pbx_sip_password: Mapped[str | None] = mapped_column(EncryptedText)
    mbg_sip_username: Mapped[str] = mapped_column(String(64), default="")
    mbg_sip_password: Mapped[str | None] = mapped_column(EncryptedText)
    mcs_host: Mapped[str] = mapped_column(String(253), default="")
    mcs_username: Mapped[str] = mapped_column(String(64), default="")
    mcs_password: Mapped[str | None] = mapped_column(EncryptedText)
    deployment_pin: Mapped[str | None] = mapped_column(EncryptedText)
    source: Mapped[str] = mapped_column(String(10), default="manual")
    source_connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("cd_mbg_connection.id", ondelete="SET NULL")
    )
    source_record_id: Mapped[str | None] = mapped_column(String(64))
    deployed_at: Mapped[datetime | None]
    downloaded_at: Mapped[datetime | None]
    force_config: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # SHA-256 of the credential the installed client polls with (R-DEP7); outlives deployments.
    client_credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    first_name_key: Mapped[str] = mapped_column(_key(100), default="")
    last_name_key: Mapped[str] = mapped_column(_key(100), default="")
    email_key: Mapped[str] = mapped_column(_key(320), default="")
    mbg_sip_username_key: Mapped[str] = mapped_column(_key(64), default="")
    mcs_username_key: Mapped[str] = mapped_column(_key(64), default="")

    @property
    def imported(self) -> bool:
        """True for users whose data comes from a source they are synchronised with."""
        return self.source in ("mbg", "directory")


class Deployment(Base):
    """The live deployment of a user: link and auth token (hashes only), downloads left, expiry,
    PIN attempts. Deploying again replaces it, so earlier links stop working (R-DEP1-R-DEP5)."""

    __tablename__ = "cd_deployment"
    __table_args__ = (CheckConstraint("downloads_left >= 0", name="downloads_left"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("cd_user.id", ondelete="CASCADE"), unique=True)
    link_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    auth_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    downloads_left: Mapped[int]
    pin_failures: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]


DOWNLOAD_OUTCOMES = (
    ("opened", "Link opened (no download)"),
    ("downloaded", "Downloaded"),
    ("pin_required", "PIN asked"),
    ("pin_wrong", "Wrong PIN"),
    ("locked", "Refused: locked after wrong PINs"),
    ("expired", "Refused: expired"),
    ("used_up", "Refused: no downloads left"),
    ("invalid", "Refused: unknown token"),
    ("forced", "Forced configuration"),
)


class DownloadLog(Base):
    """One attempt to open or redeem a deployment: when, from where, and how it ended."""

    __tablename__ = "cd_download_log"
    __table_args__ = (
        CheckConstraint(c.check("outcome", DOWNLOAD_OUTCOMES), name="outcome"),
        Index("ix_cd_download_log_user_id_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("cd_user.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    outcome: Mapped[str] = mapped_column(String(16))


class CsvImportRecord(Base):
    """The outcome of a CSV import, kept a day for its result page and rejected-rows download."""

    __tablename__ = "cd_import_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text)  # JSON: counts, options, problems
    # The rejected rows may hold passwords the administrator uploaded: encrypted like them.
    rejected_csv: Mapped[bytes | None] = mapped_column(EncryptedBytes)


def with_keys(values: dict) -> dict:
    """Column values plus the lower-cased shadow columns of those that have one."""
    for name in KEYED_COLUMNS:
        if name in values:
            values[f"{name}_key"] = (values[name] or "").lower()
    return values


# Settings of a new profile and of the shipped Default profile (SPEC R-P2).
GROUP_DEFAULTS = {
    "transport": "tls",
    "srtp_mode": "off",
    "sip_port": 5061,
    "dtmf": "rfc2833",
    "codec": "G722",
    "video_tx": 768,
    "video_rx": 768,
    "dscp_sip": 24,
    "dscp_audio": 46,
    "dscp_video": 34,
    "verify_tls": True,
    "tls_ca": "public",
    "custom_ca_pem": None,
}
PROFILE_DEFAULTS = {
    "use_teleworker": "off",
    "use_softphone": "on",
    "mbg_connection_id": None,
    "rtp_timeout_detection": True,
    "prefer_mobile_network": False,
    "override_user_email": False,
    "deployment_email": "",
    "log_level": "error",
    "call_mode": "audio",
    "office_number": None,
    "office_number_pause": 0,
    "config_download_host": "micollab_fqdn",
    "config_download_host_custom": None,
    "mbg_sip_host": "mbg_fqdn",
    "mbg_sip_host_custom": None,
    "webrtc_sip_host": "mbg_fqdn",
    "webrtc_sip_host_custom": None,
    "pbx_sip_host": "default",
    "pbx_sip_host_custom": None,
    "conference_access_code": None,
    "emergency_numbers": "911,112,999,000,110,119",
    "pbx_type": "mivb",
    "tw_type": "mbg",
    **{f"pbx_{k}": v for k, v in GROUP_DEFAULTS.items()},
    **{f"tw_{k}": v for k, v in GROUP_DEFAULTS.items()},
}
