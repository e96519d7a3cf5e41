"""The enumerations of the blade: stored value and the label an administrator sees."""

from __future__ import annotations

TELEWORKER_MODES = (("off", "off"), ("on", "on"), ("on_locked", "on (locked)"))
SOFTPHONE_MODES = TELEWORKER_MODES
LOG_LEVELS = (
    ("off", "Off"),
    ("error", "Error"),
    ("warning", "Warning"),
    ("info", "Info"),
    ("debug", "Debug"),
)
CALL_MODES = (("audio", "Audio"), ("video", "Video"))
CONFIG_DOWNLOAD_HOSTS = (("micollab_fqdn", "MiCollab Server FQDN"), ("custom", "Custom"))
MBG_SIP_HOSTS = (("mbg_fqdn", "MBG's FQDN"), ("custom", "Custom"), ("custom_srv", "Custom DNS SRV"))
WEBRTC_SIP_HOSTS = (("mbg_fqdn", "MBG's FQDN"), ("custom", "Custom"))
PBX_SIP_HOSTS = (("default", "Default"), ("custom_srv", "Custom DNS SRV"))
PBX_TYPES = (
    ("mivb", "MiVoice Business"),
    ("mv5000", "MiVoice 5000"),
    ("mxone", "MiVoice MX-ONE"),
    ("mvo400", "MiVoice Office 400"),
)
TELEWORKER_TYPES = (("mbg", "MBG"),)
TRANSPORTS = (("tls", "TLS"), ("tcp", "TCP"), ("udp", "UDP"))
SRTP_MODES = (("off", "Off"), ("mandatory", "Mandatory"), ("optional", "Optional"))
DTMF_METHODS = (("rfc2833", "RFC 2833/RFC 4733"), ("sip_info", "SIP INFO"))
AUDIO_CODECS = (
    ("G722", "G722"),
    ("G722.1", "G722.1"),
    ("G729", "G729"),
    ("Opus", "Opus"),
    ("PCMA", "PCMA"),
    ("PCMU", "PCMU"),
)
TLS_CAS = (("public", "Public CA"), ("mitel", "Mitel CA"), ("custom", "Custom"))

VIDEO_RATES = (1536, 1024, 768, 512, 384, 192, 128)
# PBX types whose clients may ask for Opus (guide 1.3.3: MiVoice Business and MX-ONE only).
OPUS_PBX_TYPES = ("mivb", "mxone")

# RFC 2474 / RFC 4594 class names and their code points.
DSCP_CLASSES = {
    **{f"CS{i}": i * 8 for i in range(8)},
    **{f"AF{c}{d}": c * 8 + d * 2 for c in range(1, 5) for d in range(1, 4)},
    "EF": 46,
}


def values(choices: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The stored values of a choice list."""
    return tuple(v for v, _ in choices)


def label(choices: tuple[tuple[str, str], ...], value: str | None) -> str:
    """The label of a stored value (the value itself if unknown)."""
    return dict(choices).get(value or "", value or "")


def check(column: str, choices: tuple[tuple[str, str], ...]) -> str:
    """A CHECK constraint expression limiting `column` to the choice values."""
    quoted = ", ".join(f"'{v}'" for v in values(choices))
    return f"{column} IN ({quoted})"
