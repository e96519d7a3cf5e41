"""The Deployment Profile form (SPEC R-P2, R-P3): every field with its rule, in three groups."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import BooleanField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from server_manager_stub.validators import Email, whole_number

from .. import choices as c
from ..models import GROUPS, PROFILE_DEFAULTS, Profile
from .validators import (
    CaCertificate,
    DnsSrvName,
    DscpField,
    EmergencyNumbers,
    Fqdn,
    FqdnOrIp,
    HiddenUnless,
    SnapToSupported,
    WholeNumberField,
    is_shown,
)

TELEWORKER_ON = ("on", "on_locked")


def _choices(options: tuple[tuple[str, str], ...]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in options]


def _select(
    label: str,
    options: tuple[tuple[str, str], ...],
    name: str,
    *validators: Any,
    description: str = "",
) -> SelectField:
    return SelectField(
        label,
        choices=_choices(options),
        default=PROFILE_DEFAULTS[name],
        validators=list(validators),
        description=description,
        validate_choice=True,
    )


def _group_fields(prefix: str) -> dict[str, Any]:
    """The settings shared by the Softphone (PBX) and Teleworker (MBG) groups."""
    # The Teleworker group exists only while Use Teleworker is on (or on, locked).
    shown = [HiddenUnless("use_teleworker", *TELEWORKER_ON)] if prefix == "tw" else []
    port_rule = [HiddenUnless("pbx_sip_host", "default")] if prefix == "pbx" else []
    where = "the PBX" if prefix == "pbx" else "the MBG"
    d = PROFILE_DEFAULTS
    return {
        f"{prefix}_transport": _select(
            "SIP transport protocol",
            c.TRANSPORTS,
            f"{prefix}_transport",
            *shown,
            description="TLS is recommended. Some Android phones cannot use TCP; UDP works but "
            f"TLS is preferable. Must match the SIP setting of {where}.",
        ),
        f"{prefix}_srtp_mode": _select(
            "SRTP mode",
            c.SRTP_MODES,
            f"{prefix}_srtp_mode",
            *shown,
            HiddenUnless(f"{prefix}_transport", "tls"),
            description="Encrypts the call audio (audio only). Mandatory shows a padlock on the "
            "call screen. Only with TLS.",
        ),
        f"{prefix}_sip_port": WholeNumberField(
            "SIP port",
            default=None,
            message="Enter the SIP port as a whole number from 1 to 65535.",
            validators=[
                *shown,
                *port_rule,
                Optional(),
                NumberRange(1, 65535, "Enter a SIP port from 1 to 65535."),
            ],
            description="Empty means the usual port: 5061 for TLS, 5060 for TCP and UDP."
            + (" Used only when PBX SIP host is Default." if port_rule else ""),
        ),
        f"{prefix}_dtmf": _select(
            "SIP DTMF method",
            c.DTMF_METHODS,
            f"{prefix}_dtmf",
            *shown,
            description="How key presses are sent during a call.",
        ),
        f"{prefix}_codec": _select(
            "Default audio codec",
            c.AUDIO_CODECS,
            f"{prefix}_codec",
            *shown,
            description="The codec the client asks for first; the call still negotiates. Opus "
            "only with MiVoice Business or MiVoice MX-ONE.",
        ),
        f"{prefix}_video_tx": WholeNumberField(
            "Max video TX rate (kbit/s)",
            default=d[f"{prefix}_video_tx"],
            message="Enter the rate in kbit/s as a whole number, for example 768.",
            validators=[*shown, SnapToSupported(c.VIDEO_RATES, "maximum video transmit rate")],
            description="Supported: 1536, 1024, 768, 512, 384, 192, 128. Another number is "
            "changed to the nearest of these.",
        ),
        f"{prefix}_video_rx": WholeNumberField(
            "Max video RX rate (kbit/s)",
            default=d[f"{prefix}_video_rx"],
            message="Enter the rate in kbit/s as a whole number, for example 768.",
            validators=[*shown, SnapToSupported(c.VIDEO_RATES, "maximum video receive rate")],
            description="The most the client asks to receive. Same values as the transmit rate.",
        ),
        f"{prefix}_dscp_sip": DscpField(
            "DSCP SIP",
            default=d[f"{prefix}_dscp_sip"],
            validators=list(shown),
            description="0-63 or a class name (CS0-CS7, AF11-AF43, EF). Default 24 (CS3).",
        ),
        f"{prefix}_dscp_audio": DscpField(
            "DSCP RTP audio",
            default=d[f"{prefix}_dscp_audio"],
            validators=list(shown),
            description="Default 46 (EF).",
        ),
        f"{prefix}_dscp_video": DscpField(
            "DSCP RTP video",
            default=d[f"{prefix}_dscp_video"],
            validators=list(shown),
            description="Default 34 (AF41).",
        ),
        f"{prefix}_verify_tls": BooleanField(
            "Verify TLS-server-certificate",
            default=d[f"{prefix}_verify_tls"],
            validators=list(shown),
            description=f"The client checks the certificate of {where} on the SIP TLS connection.",
        ),
        f"{prefix}_tls_ca": _select(
            "TLS-server-certificate CA",
            c.TLS_CAS,
            f"{prefix}_tls_ca",
            *shown,
            description=f"Which CA the client trusts for {where}: a public CA, Mitel's built-in "
            f"CA, or your own CA uploaded below. Must match how {where} is set up.",
        ),
        f"{prefix}_custom_ca": FileField(
            "TLS-server-certificate CA upload",
            validators=[
                *shown,
                HiddenUnless(f"{prefix}_tls_ca", "custom", hidden_value=None),
                CaCertificate(),
            ],
            description="The certificate of your own CA in PEM form; it is sent to the clients.",
        ),
    }


class _ProfileFormBase(FlaskForm):
    """General settings; the two groups are added by build below."""

    name = StringField(
        "Name",
        validators=[
            DataRequired("Enter a name for the profile."),
            Length(max=64, message="A profile name has at most 64 characters."),
        ],
        description="A name that tells the profiles apart, such as the site or MBG it serves.",
    )
    use_teleworker = _select(
        "Use Teleworker",
        c.TELEWORKER_MODES,
        "use_teleworker",
        description="on: clients register through the MBG; the user may switch it off. "
        "on (locked): a forced configuration switches it back on.",
    )
    use_softphone = _select(
        "Use Softphone",
        c.SOFTPHONE_MODES,
        "use_softphone",
        description="on: users make calls on the phone itself instead of their desk phone. "
        "on (locked): a forced configuration switches it back on.",
    )
    mbg_connection_id = SelectField(
        "MBG",
        choices=[],
        coerce=str,
        validate_choice=True,
        description="The MBG connection whose teleworker accounts this profile's users get. "
        "Required with Use Teleworker. Connect MBGs under Configuration.",
    )
    rtp_timeout_detection = BooleanField(
        "RTP timeout detection",
        default=True,
        description="End a softphone call after more than 5 seconds without audio.",
    )
    prefer_mobile_network = BooleanField(
        "Prefer mobile network over VoIP",
        description="Call over the mobile network when both it and Wi-Fi are there (iOS clients "
        "only).",
    )
    override_user_email = BooleanField(
        "Override user e-mail",
        description="Send every deployment e-mail to the address below instead of the users'.",
    )
    deployment_email = StringField(
        "Deployment e-mail address",
        validators=[
            DataRequired("Enter the deployment e-mail address."),
            Length(max=320, message="An e-mail address has at most 320 characters."),
            Email(),
        ],
        description="Receives the deployment e-mail of users without an address of their own.",
    )
    log_level = _select(
        "Log level",
        c.LOG_LEVELS,
        "log_level",
        description="How much the client logs to the server's logs.",
    )
    call_mode = _select(
        "Call Mode",
        c.CALL_MODES,
        "call_mode",
        description="Audio is recommended; users can still turn video on.",
    )
    office_number = StringField(
        "Office Number",
        validators=[
            Optional(),
            Length(max=32, message="At most 32 characters."),
            Regexp(r"^\+?[0-9*#]+$", message="Use digits, * and #, optionally starting with +."),
        ],
        description="The number clients dial first to route a call through the PBX (on MiVoice "
        "Business the Hot Desking Access Number).",
    )
    office_number_pause = WholeNumberField(
        "Office number Pause",
        default=0,
        message="Enter the pause in whole seconds from 0 to 30.",
        validators=[
            InputRequired("Enter the pause in seconds from 0 to 30."),
            NumberRange(0, 30, "Enter the pause in seconds from 0 to 30."),
        ],
        description="Seconds to wait after the Office Number before dialling the extension.",
    )
    config_download_host = _select(
        "Config download host",
        c.CONFIG_DOWNLOAD_HOSTS,
        "config_download_host",
        description="Where clients download their configuration: this server's FQDN, or "
        "another FQDN (Custom), for example the MBG's external name.",
    )
    config_download_host_custom = StringField(
        "Custom config download host",
        validators=[
            HiddenUnless("config_download_host", "custom", hidden_value=None),
            DataRequired("Enter the FQDN clients download their configuration from."),
            Fqdn(),
        ],
        description="An FQDN, not an IP address.",
    )
    mbg_sip_host = _select(
        "MBG SIP host",
        c.MBG_SIP_HOSTS,
        "mbg_sip_host",
        HiddenUnless("use_teleworker", *TELEWORKER_ON),
        description="Where teleworker clients register on the MBG. An FQDN that resolves to "
        "the MBG's outside address everywhere is best.",
    )
    mbg_sip_host_custom = StringField(
        "Custom MBG SIP host",
        validators=[
            HiddenUnless("mbg_sip_host", "custom", "custom_srv", hidden_value=None),
            DataRequired("Enter the MBG SIP host."),
        ],
        description="Custom: an FQDN or IP address. Custom DNS SRV: the DNS name the SRV records "
        "are published under (no IP address).",
    )
    webrtc_sip_host = _select(
        "MBG-WebRTC SIP host",
        c.WEBRTC_SIP_HOSTS,
        "webrtc_sip_host",
        description="Where WebRTC clients connect on the MBG. Use Custom when the profile's MBG "
        "connection is the local MBG but clients must reach an external one.",
    )
    webrtc_sip_host_custom = StringField(
        "Custom MBG-WebRTC SIP host",
        validators=[
            HiddenUnless("webrtc_sip_host", "custom", hidden_value=None),
            DataRequired("Enter the FQDN of the MBG for WebRTC clients."),
            Fqdn(
                "An IP address is not allowed here: the WebRTC softphone cannot connect to an IP "
                "address. Enter the MBG's FQDN."
            ),
        ],
        description="An FQDN; the WebRTC softphone does not connect to an IP address.",
    )
    pbx_sip_host = _select(
        "PBX SIP host",
        c.PBX_SIP_HOSTS,
        "pbx_sip_host",
        description="Default: the address the PBX reports. Custom DNS SRV: a DNS name for SRV "
        "look-ups (the SIP port below is then not used).",
    )
    pbx_sip_host_custom = StringField(
        "Custom PBX SIP host",
        validators=[
            HiddenUnless("pbx_sip_host", "custom_srv", hidden_value=None),
            DataRequired("Enter the DNS SRV name of the PBX."),
            DnsSrvName(),
        ],
        description="A DNS name, not an IP address.",
    )
    conference_access_code = StringField(
        "Conference access code",
        validators=[
            Optional(),
            Length(max=32, message="At most 32 characters."),
            Regexp(r"^[0-9*#]+$", message="Use digits, * and # only."),
        ],
        description="The code that starts a conference on the PBX, if it has one.",
    )
    emergency_numbers = StringField(
        "Emergency numbers",
        default=PROFILE_DEFAULTS["emergency_numbers"],
        validators=[EmergencyNumbers()],
        description="Dialled directly, never rerouted. Separate with commas, no spaces. Remove "
        "one only if it clashes with a dialling string and users never travel where "
        "it is the emergency number.",
    )
    pbx_type = _select(
        "PBX type",
        c.PBX_TYPES,
        "pbx_type",
        description="The call server the clients register with.",
    )
    tw_type = _select(
        "Teleworker type",
        c.TELEWORKER_TYPES,
        "tw_type",
        HiddenUnless("use_teleworker", *TELEWORKER_ON),
        description="MBG is the only teleworker type.",
    )
    copy_from = HiddenField()

    def __init__(
        self,
        *args: Any,
        session: Session,
        profile: Profile | None = None,
        mbg_choices: list[tuple[int, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        self.profile = profile
        self.notices: list[str] = []
        self.mbg_connection_id.choices = [SelectChoice("", "— none —")] + [
            SelectChoice(str(i), label) for i, label in mbg_choices
        ]

    def validate_name(self, field: StringField) -> None:
        """Names are unique, ignoring case and surrounding spaces."""
        name = (field.data or "").strip()
        field.data = name
        q = select(Profile.id).where(Profile.name_key == name.lower())
        if self.profile is not None:
            q = q.where(Profile.id != self.profile.id)
        if self.session.scalar(q) is not None:
            raise ValidationError(f"A profile named '{name}' already exists; choose another name.")

    def validate_mbg_connection_id(self, field: SelectField) -> None:
        """An MBG is required while clients register through one."""
        if self.use_teleworker.data in TELEWORKER_ON and not field.data:
            if len(field.choices) <= 1:
                raise ValidationError(
                    "Use Teleworker needs an MBG, and none is connected yet: "
                    "connect one under Configuration › Connections to MBGs."
                )
            raise ValidationError("Choose the MBG that teleworker clients register through.")

    def validate_mbg_sip_host_custom(self, field: StringField) -> None:
        """Custom takes an FQDN or an IP address; Custom DNS SRV a DNS name only."""
        rule = DnsSrvName() if self.mbg_sip_host.data == "custom_srv" else FqdnOrIp()
        rule(self, field)

    def _opus_rule(self, field: SelectField) -> None:
        if field.data == "Opus" and self.pbx_type.data not in c.OPUS_PBX_TYPES:
            raise ValidationError(
                f"Opus is supported only with MiVoice Business or MiVoice "
                f"MX-ONE, not with {c.label(c.PBX_TYPES, self.pbx_type.data)}."
            )

    def validate_pbx_codec(self, field: SelectField) -> None:
        """Opus only with MiVoice Business or MX-ONE."""
        self._opus_rule(field)

    def validate_tw_codec(self, field: SelectField) -> None:
        """Opus only with MiVoice Business or MX-ONE (the PBX behind the MBG)."""
        self._opus_rule(field)

    def _udp_notice(self, field: SelectField, group: str) -> None:
        if field.data == "udp":
            self.notices.append(
                f"{group}: UDP is accepted, but TLS is preferable (encryption, "
                "and some Android phones handle only TLS well)."
            )

    def validate_pbx_transport(self, field: SelectField) -> None:
        """UDP is accepted with a warning."""
        self._udp_notice(field, "Softphone settings")

    def validate_tw_transport(self, field: SelectField) -> None:
        """UDP is accepted with a warning."""
        self._udp_notice(field, "Teleworker settings")

    def _custom_ca_rule(self, prefix: str) -> None:
        upload = self[f"{prefix}_custom_ca"]
        if not is_shown(self, upload) or getattr(upload, "pem", None) or upload.errors:
            return
        if self.stored_ca(prefix) is None:
            upload.errors.append(
                "Upload the CA certificate (PEM), or choose another TLS-server-certificate CA."
            )

    def stored_ca(self, prefix: str) -> str | None:
        """The CA PEM this profile (or the profile being copied) already has for the group."""
        source = self.profile
        copy_from = whole_number(self.copy_from.data)
        if source is None and copy_from is not None:
            source = self.session.get(Profile, copy_from)
        return getattr(source, f"{prefix}_custom_ca_pem", None) if source is not None else None

    def validate(self, extra_validators: Any = None) -> bool:
        """Field rules, then the rules that need several fields at once."""
        ok = super().validate(extra_validators)
        for prefix in GROUPS:
            self._custom_ca_rule(prefix)
        return ok and not any(self[f"{p}_custom_ca"].errors for p in GROUPS)

    def values(self) -> dict[str, Any]:
        """The validated form as Profile column values (hidden fields at their defaults)."""
        data: dict[str, Any] = {"name": self.name.data}
        for key in PROFILE_DEFAULTS:
            if key.endswith("_custom_ca_pem"):
                continue
            field = self._fields.get(key)
            data[key] = field.data if field is not None else PROFILE_DEFAULTS[key]
        data["mbg_connection_id"] = (
            int(self.mbg_connection_id.data) if self.mbg_connection_id.data else None
        )
        for key in ("office_number", "conference_access_code"):
            data[key] = (data[key] or "").strip() or None
        for prefix in GROUPS:
            if data[f"{prefix}_sip_port"] is None:
                data[f"{prefix}_sip_port"] = 5061 if data[f"{prefix}_transport"] == "tls" else 5060
            upload = self[f"{prefix}_custom_ca"]
            if data[f"{prefix}_tls_ca"] != "custom" or not is_shown(self, self[f"{prefix}_tls_ca"]):
                data[f"{prefix}_custom_ca_pem"] = None
            else:
                data[f"{prefix}_custom_ca_pem"] = getattr(upload, "pem", None) or self.stored_ca(
                    prefix
                )
        return data


ProfileForm = type(
    "ProfileForm", (_ProfileFormBase,), {**_group_fields("pbx"), **_group_fields("tw")}
)


def form_data(profile: Profile) -> dict[str, Any]:
    """A stored profile as the form's initial data."""
    data = {key: getattr(profile, key) for key in PROFILE_DEFAULTS if not key.endswith("_pem")}
    data["name"] = profile.name
    data["mbg_connection_id"] = str(profile.mbg_connection_id or "")
    return data
