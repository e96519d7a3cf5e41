"""Deployment users: the rule of every field (one home for the form and the CSV import) and the
Create New User / Modify form (SPEC R-U3, R-U4, R-U9)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, Form, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import ValidationError

from server_manager_stub.validators import check_email

from .validators import FqdnOrIp

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ACCOUNT = re.compile(r"[^\s\x00-\x1f\x7f]+")
_NUMBER = re.compile(r"\+?[0-9*#]+")
_PIN = re.compile(r"[0-9]{4,20}")


_HOST = FqdnOrIp()


def _host(value: str) -> str | None:
    return _HOST.problem(value)


def _number(value: str) -> str | None:
    if not _NUMBER.fullmatch(value):
        return "A directory number is digits, * and #, optionally starting with +."
    return None


def _account(value: str) -> str | None:
    if not _ACCOUNT.fullmatch(value):
        return "A user name has no spaces or control characters."
    return None


def _pin(value: str) -> str | None:
    if not _PIN.fullmatch(value):
        return "The Deployment PIN is 4 to 20 digits, nothing else."
    return None


def _email(value: str) -> str | None:
    return check_email(value)[1]


@dataclass(frozen=True)
class UserField:
    """A user column: its label, CSV headers (first one is what exports write), limit and rule."""

    name: str
    label: str
    headers: tuple[str, ...]
    max_len: int
    check: Callable[[str], str | None] | None = None
    required: bool = False
    secret: bool = False
    example: str = ""


USER_FIELDS: tuple[UserField, ...] = (
    UserField("first_name", "First name", ("Firstname", "First name"), 100, example="Anna"),
    UserField(
        "last_name", "Last name", ("Lastname", "Last name"), 100, required=True, example="Becker"
    ),
    UserField(
        "directory_number",
        "Directory Number",
        ("Number", "Directory Number", "DN"),
        32,
        _number,
        example="4041",
    ),
    UserField(
        "email",
        "Email address",
        ("Email", "Email address", "E-mail"),
        320,
        _email,
        required=True,
        example="anna.becker@example.com",
    ),
    UserField(
        "pbx_sip_host", "PBX SIP Host", ("PBX SIP Host",), 253, _host, example="pbx.example.com"
    ),
    UserField(
        "pbx_sip_username",
        "PBX SIP user name/Device number",
        ("PBX SIP User name", "PBX SIP Username", "PBX SIP user name/Device number"),
        64,
        _account,
        example="4041",
    ),
    UserField(
        "pbx_sip_password",
        "PBX SIP password",
        ("PBX SIP Password",),
        128,
        secret=True,
        example="pbx-secret",
    ),
    UserField(
        "mbg_sip_username",
        "MBG SIP user name",
        ("MBG SIP User name", "MBG SIP Username", "MBG UserName"),
        64,
        _account,
        example="tw4041",
    ),
    UserField(
        "mbg_sip_password",
        "MBG SIP password",
        ("MBG SIP Password",),
        128,
        secret=True,
        example="mbg-secret",
    ),
    UserField(
        "mcs_host",
        "MiCollab Client Service host",
        ("MiCollab Client Service Host",),
        253,
        _host,
        example="micollab.example.com",
    ),
    UserField(
        "mcs_username",
        "MiCollab Client Service user name",
        (
            "MiCollab Client Service User name",
            "MiCollab Client Service Username",
            "MiCollab Client Service Account",
        ),
        64,
        _account,
        example="abecker",
    ),
    UserField(
        "mcs_password",
        "MiCollab Client Service password",
        ("MiCollab Client Service Password",),
        128,
        secret=True,
        example="mcs-secret",
    ),
    UserField(
        "deployment_pin",
        "Deployment PIN",
        ("Deployment PIN", "PIN"),
        20,
        _pin,
        secret=True,
        example="482915",
    ),
)
FIELDS_BY_NAME = {f.name: f for f in USER_FIELDS}


def check_value(field: UserField, value: str) -> str | None:
    """Why `value` (already trimmed) is not acceptable for `field`, or None."""
    if not value:
        return f"{field.label} is required." if field.required else None
    if len(value) > field.max_len:
        return f"{field.label} has at most {field.max_len} characters."
    if _CONTROL.search(value):
        return f"{field.label} contains a control character (tab, line break…)."
    return field.check(value) if field.check else None


def number_warning(value: str) -> str | None:
    """A directory number with # imports, but cannot sync over a remote MBG (guide 1.2.2)."""
    if "#" in (value or ""):
        return (
            f"The directory number {value} contains #: it cannot be synchronised over a "
            "remote MBG connection. Use * instead (1*001 for 1#001), or a local MBG."
        )
    return None


class _Rule:
    """Runs a UserField's rule inside WTForms."""

    def __init__(self, field: UserField) -> None:
        self.field = field

    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        field.data = value
        problem = check_value(self.field, value)
        if problem:
            raise ValidationError(problem)
        if self.field.name == "email" and value:
            field.data = check_email(value)[0]


def _text(name: str, **kwargs: Any) -> StringField:
    spec = FIELDS_BY_NAME[name]
    return StringField(spec.label, validators=[_Rule(spec)], **kwargs)


def _secret(name: str, **kwargs: Any) -> PasswordField:
    spec = FIELDS_BY_NAME[name]
    return PasswordField(spec.label, validators=[_Rule(spec)], **kwargs)


class UserForm(FlaskForm):
    """Create New User / Modify. Secrets are never sent back: an empty secret keeps the stored
    one (the Deployment PIN is shown only when the administrator asks)."""

    profile_id = SelectField(
        "Profile",
        coerce=str,
        validate_choice=True,
        description="The deployment profile whose settings the user gets.",
    )
    first_name = _text("first_name")
    last_name = _text("last_name", description="Required.")
    directory_number = _text(
        "directory_number",
        description="Digits, * and #. A number with # cannot sync over a remote MBG.",
    )
    email = _text("email", description="Required. The deployment link and auth token go here.")
    pbx_sip_host = _text("pbx_sip_host", description="FQDN or IP address of the PBX for SIP.")
    pbx_sip_username = _text("pbx_sip_username")
    pbx_sip_password = _secret("pbx_sip_password")
    mbg_sip_username = _text("mbg_sip_username", description="The teleworker account on the MBG.")
    mbg_sip_password = _secret("mbg_sip_password")
    mcs_host = _text("mcs_host", description="FQDN of the MiCollab administration server.")
    mcs_username = _text(
        "mcs_username",
        description="Changing it on a deployed user needs a factory reset of "
        "the client and a new deployment.",
    )
    mcs_password = _secret("mcs_password")
    deployment_pin = StringField(
        "Deployment PIN",
        validators=[_Rule(FIELDS_BY_NAME["deployment_pin"])],
        description="Optional, 4-20 digits. Asked before the download; never in the e-mail, "
        "so tell the user separately.",
    )

    SECRETS = ("pbx_sip_password", "mbg_sip_password", "mcs_password", "deployment_pin")

    def __init__(self, *args: Any, profiles: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile_id.choices = [SelectChoice(str(i), name) for i, name in profiles]

    def values(self) -> dict[str, Any]:
        """The form as column values; an empty secret is left out (the stored one stays)."""
        data: dict[str, Any] = {"profile_id": int(self.profile_id.data)}
        for spec in USER_FIELDS:
            value = self[spec.name].data or ""
            if spec.name in self.SECRETS and not value:
                continue
            data[spec.name] = value
        return data
