"""Reusable validators and fields of the blade's forms: conditional fields, hosts, DSCP, rates."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from wtforms import Field, Form, IntegerField, StringField
from wtforms.validators import StopValidation, ValidationError

from server_manager_stub.validators import whole_number

from ..choices import DSCP_CLASSES

_DEFAULT = object()


class HiddenUnless:
    """Show and use a field only while another field has one of `values`.

    One declaration serves both sides: on the server a hidden field's posted data is thrown away
    and replaced by `hidden_value` (default: the field's default), and no other rule runs; in the
    browser the wrapper carries `data-hidden-unless`, read by shell.js. If the other field is
    itself hidden, this one is hidden too. Put it first in the validator list.
    """

    def __init__(self, other: str, *values: Any, hidden_value: Any = _DEFAULT) -> None:
        self.other = other
        self.values = tuple(values)
        self.hidden_value = hidden_value

    def __call__(self, form: Form, field: Field) -> None:
        if is_shown(form, field):
            return
        field.errors[:] = []
        value = field.default if self.hidden_value is _DEFAULT else self.hidden_value
        field.data = value() if callable(value) else value
        raise StopValidation()

    def holds(self, form: Form) -> bool:
        """True when the other field is shown and has one of the values."""
        other = form[self.other]
        return is_shown(form, other) and other.data in self.values

    def wrapper_attrs(self) -> dict[str, str]:
        """What the field's wrapper element carries for the browser."""
        return {
            "data-hidden-unless": json.dumps({"field": self.other, "values": list(self.values)})
        }


def conditions(field: Field) -> list[HiddenUnless]:
    """The HiddenUnless rules of a field."""
    return [v for v in field.validators if isinstance(v, HiddenUnless)]


def is_shown(form: Form, field: Field) -> bool:
    """True when every HiddenUnless rule of `field` holds."""
    return all(rule.holds(form) for rule in conditions(field))


class WholeNumberField(IntegerField):
    """An integer field whose parse error is a message of our own."""

    def __init__(self, *args: Any, message: str = "Enter a whole number.", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parse_message = message

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        raw = valuelist[0].strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw):
            self.data = None
            raise ValueError(self.parse_message)
        self.data = int(raw)


class DscpField(StringField):
    """A DSCP value: 0-63 or a class name (CS0-CS7, AF11-AF43, EF); `data` is the number."""

    MESSAGE = "Enter a DSCP value from 0 to 63 or a class name such as EF, AF41 or CS3 (RFC 2474)."

    def process_formdata(self, valuelist: list[str]) -> None:
        self.raw = (valuelist[0] if valuelist else "").strip()
        if not self.raw:
            self.data = None
            raise ValueError(self.MESSAGE)
        if (value := whole_number(self.raw, 63)) is not None:
            self.data = value
        elif self.raw.upper() in DSCP_CLASSES:
            self.data = DSCP_CLASSES[self.raw.upper()]
        else:
            self.data = None
            raise ValueError(self.MESSAGE)

    def _value(self) -> str:
        raw = getattr(self, "raw", None)
        return raw if raw is not None else ("" if self.data is None else str(self.data))


class SnapToSupported:
    """Keep a supported value; change any other whole number to the nearest supported one
    (a tie goes to the lower) and tell the administrator what was changed."""

    def __init__(self, supported: Iterable[int], what: str) -> None:
        self.supported = sorted(supported)
        self.what = what

    def __call__(self, form: Form, field: Field) -> None:
        value = field.data
        if value is None:
            if field.errors:  # the parse error already says what is wrong
                raise StopValidation()
            raise StopValidation(f"Enter the {self.what} in kbit/s, for example 768.")
        if value <= 0:
            raise StopValidation(f"The {self.what} must be above 0 kbit/s.")
        if value in self.supported:
            return
        nearest = min(self.supported, key=lambda s: (abs(s - value), s))
        field.data = nearest
        form.notices.append(
            f"{field.label.text}: {value} was changed to {nearest}, the nearest supported rate."
        )


# --- hosts -----------------------------------------------------------------------------------

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_SRV_LABEL = re.compile(r"_[A-Za-z0-9-]{1,62}")


def is_ip(value: str) -> bool:
    """True for an IPv4 or IPv6 address (IPv6 may be in brackets)."""
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def fqdn_problem(value: str, *, allow_srv_labels: bool = False) -> str | None:
    """Why `value` is not a fully qualified domain name (RFC 1123), or None if it is one."""
    if len(value) > 253:
        return "A host name has at most 253 characters."
    labels = value.split(".")
    if len(labels) < 2:
        return "Enter a fully qualified name with a domain, such as host.example.com."
    for i, lab in enumerate(labels):
        if not lab:
            return "A host name cannot have empty parts (two dots in a row, or a dot at an end)."
        if allow_srv_labels and i < len(labels) - 2 and _SRV_LABEL.fullmatch(lab):
            continue
        if not _LABEL.fullmatch(lab):
            return (
                f"'{lab}' is not a valid part of a host name: use letters, digits and "
                "hyphens, not starting or ending with a hyphen, at most 63 characters."
            )
    if re.fullmatch(r"[0-9]+", labels[-1]):
        return "The last part of a host name cannot be a number."
    return None


class _Host:
    """Base of the host validators: trims, lower-cases and checks a host field."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        problem = self.problem(value)
        if problem:
            raise ValidationError(self.message or problem)
        field.data = value.lower()

    def problem(self, value: str) -> str | None:
        """Why `value` is not acceptable, or None."""
        if not is_ip(value) and re.search(r"\s|/|:[0-9]|@", value):
            return "Enter a host name only: no spaces, scheme, port, path or user name."
        return self.check(value)

    def check(self, value: str) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError


class Fqdn(_Host):
    """A fully qualified domain name; an IP address is refused with its own message."""

    def check(self, value: str) -> str | None:
        if is_ip(value):
            return (
                "An IP address is not allowed here: enter the host's FQDN, such as "
                "deploy.example.com."
            )
        return fqdn_problem(value)


class FqdnOrIp(_Host):
    """An FQDN or an IPv4/IPv6 address."""

    def check(self, value: str) -> str | None:
        if is_ip(value):
            return None
        if re.fullmatch(r"[0-9.]+", value):
            return "This is not a valid IPv4 address."
        return fqdn_problem(value)


class DnsSrvName(_Host):
    """A DNS name used for SRV look-ups (may start with _service._proto labels); no IP."""

    def check(self, value: str) -> str | None:
        if is_ip(value):
            return (
                "An IP address is not allowed here: enter the DNS name the SRV records are "
                "published under, such as example.com."
            )
        return fqdn_problem(value, allow_srv_labels=True)


class HostWithPort:
    """An FQDN or IP address, optionally followed by :port ([IPv6]:port for IPv6)."""

    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        if "://" in value or "/" in value:
            raise ValidationError(
                "Enter a host name or IP address only (optionally :port), "
                "without https:// or a path."
            )
        host, port = value, None
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValidationError(
                        "Write an IPv6 address with a port as [2001:db8::1]:8443."
                    )
                port = rest[1:]
        elif value.count(":") == 1:
            host, port = value.split(":")
        if port is not None and not whole_number(port, 65535):
            raise ValidationError("The port after the colon must be a number from 1 to 65535.")
        if re.search(r"\s|/|@", host):
            raise ValidationError(
                "Enter a host name or IP address only (optionally :port), "
                "without https:// or a path."
            )
        if not is_ip(host):
            if re.fullmatch(r"[0-9.]+", host):
                raise ValidationError("This is not a valid IPv4 address.")
            problem = fqdn_problem(host)
            if problem:
                raise ValidationError(problem)
        field.data = value.lower()


# --- numbers and lists -----------------------------------------------------------------------


class EmergencyNumbers:
    """Comma-separated digit strings, no spaces, no duplicates, at least one."""

    def __call__(self, form: Form, field: Field) -> None:
        value = field.data or ""
        if not value.strip():
            raise ValidationError("Enter at least one emergency number, for example 911,112.")
        if re.search(r"\s", value):
            raise ValidationError("Separate emergency numbers with commas only, without spaces.")
        numbers = value.split(",")
        if any(not n for n in numbers):
            raise ValidationError("There is an empty entry: remove the extra comma.")
        bad = [n for n in numbers if not re.fullmatch(r"[0-9]+", n)]
        if bad:
            raise ValidationError(f"Emergency numbers are digits only; '{bad[0]}' is not.")
        if any(len(n) > 15 for n in numbers):
            raise ValidationError("An emergency number has at most 15 digits.")
        seen = set()
        for n in numbers:
            if n in seen:
                raise ValidationError(f"{n} is listed twice.")
            seen.add(n)


# --- certificates ----------------------------------------------------------------------------


class CaCertificate:
    """A PEM CA certificate upload: parses, is a CA (basicConstraints CA=true), is valid now.

    On success the field gets `.pem` (normalised text) and `.summary` (subject, expiry)."""

    MAX_BYTES = 64 * 1024

    def __call__(self, form: Form, field: Field) -> None:
        upload = field.data
        field.pem = None
        if upload is None or not getattr(upload, "filename", ""):
            return
        raw = upload.read(self.MAX_BYTES + 1)
        if len(raw) > self.MAX_BYTES:
            raise ValidationError("This file is too large for a CA certificate (over 64 KB).")
        field.pem, field.summary = parse_ca_pem(raw)


def parse_ca_pem(raw: bytes, now: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """Check PEM bytes holding one CA certificate; return (PEM text, summary) or raise."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"-----BEGIN" not in raw:
        if raw[:1] == b"\x30":
            raise ValidationError(
                "This is a DER (binary) certificate: upload it in PEM form "
                "(the text that starts with -----BEGIN CERTIFICATE-----)."
            )
        raise ValidationError(
            "This is not a PEM certificate: the file should start with -----BEGIN CERTIFICATE-----."
        )
    try:
        certs = x509.load_pem_x509_certificates(raw.replace(b"\r\n", b"\n"))
    except ValueError:
        raise ValidationError(
            "The certificate in this file cannot be read: it is damaged or "
            "not an X.509 certificate."
        ) from None
    if len(certs) != 1:
        raise ValidationError(f"Upload exactly one CA certificate; this file holds {len(certs)}.")
    cert = certs[0]
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError:  # an extension that does not parse
        raise ValidationError(
            "The certificate in this file cannot be read: one of its extensions is damaged."
        ) from None
    if constraints is None or not constraints.ca:
        raise ValidationError(
            "This certificate is not a CA certificate (its basic constraints "
            "do not say CA=true): upload the certificate of the CA that issued "
            "the server's certificate."
        )
    now = now or datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise ValidationError(
            f"This CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}."
        )
    if cert.not_valid_before_utc > now:
        raise ValidationError(
            f"This CA certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d}."
        )
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode("ascii"), ca_summary(cert)


def ca_summary(cert: x509.Certificate) -> dict[str, Any]:
    """Subject and validity of a certificate, for display."""
    return {"subject": cert.subject.rfc4514_string(), "not_after": cert.not_valid_after_utc}


def summary_of_pem(pem: str | None) -> dict[str, Any] | None:
    """Subject and expiry of a stored PEM certificate (None if there is none)."""
    if not pem:
        return None
    return ca_summary(x509.load_pem_x509_certificate(pem.encode("ascii")))
