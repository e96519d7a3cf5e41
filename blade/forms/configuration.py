"""Forms of the Configuration tab: MBG connections."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import StringField, TextAreaField, URLField
from wtforms.validators import URL, DataRequired, Length, Optional, Regexp, ValidationError

from .. import mail
from ..mbg import name_taken
from .validators import HostWithPort


class MbgConnectionForm(FlaskForm):
    """A new connection: its name and the MBG's host."""

    name = StringField(
        "Name",
        validators=[
            DataRequired("Enter a name for the connection."),
            Length(max=64, message="A connection name has at most 64 characters."),
        ],
        description="Tells the MBGs apart in profiles, for example the site or cluster.",
    )
    host = StringField(
        "Host",
        validators=[
            DataRequired("Enter the MBG's host name or IP address."),
            Length(max=262, message="A host has at most 262 characters."),
            HostWithPort(),
        ],
        description="FQDN or IP address of the MBG, optionally with :port (default 443). Its Web "
        "Service must be activated.",
    )

    def __init__(self, *args: Any, session: Session, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session

    def validate_name(self, field: StringField) -> None:
        """Names are unique, ignoring case."""
        field.data = (field.data or "").strip()
        if name_taken(self.session, field.data):
            raise ValidationError(f"A connection named '{field.data}' already exists.")


class VerifierForm(FlaskForm):
    """The verifier shown by the MBG after approval, pasted by the administrator."""

    verifier = StringField(
        "Verifier",
        validators=[
            DataRequired("Paste the verifier the MBG showed after you approved the request."),
            Length(max=100, message="A verifier is short; check what you pasted."),
        ],
        description="Shown on the MBG's Web Services page after you approve the request.",
    )


class EmailTemplateForm(FlaskForm):
    """The deployment e-mail's subject and body, and the store links it can name."""

    subject = StringField(
        "E-mail subject line",
        validators=[Length(max=255, message="A subject has at most 255 characters.")],
        description="Empty: the built-in subject. Placeholders: first name, last name, number.",
    )
    body = TextAreaField(
        "E-mail body",
        validators=[Length(max=20000, message="The body has at most 20,000 characters.")],
        description="Empty: the built-in text. It must contain the link, the auth token and the "
        "QR code placeholders. Text is sent as written; user values are escaped.",
    )

    def validate(self, extra_validators: object = None) -> bool:
        """Field limits, then the placeholder rules of R-DEP8."""
        ok = super().validate(extra_validators)
        found = mail.problems(self.subject.data or "", self.body.data or "")
        self.subject.errors = list(self.subject.errors) + found["subject"]
        self.body.errors = list(self.body.errors) + found["body"]
        return ok and not found["subject"] and not found["body"]


def _link_field(key: str) -> URLField:
    label, default = mail.STORE_LINKS[key]
    return URLField(
        label,
        default=default,
        validators=[
            Optional(),
            Length(max=500, message="A link has at most 500 characters."),
            Regexp(r"^https?://", message="Enter a web address starting with https://."),
            URL(require_tld=True, message="Enter a web address starting with https://."),
        ],
        description=f"[#####{key}#####]",
    )


for _key in mail.STORE_LINKS:
    setattr(EmailTemplateForm, f"link_{_key}", _link_field(_key))
