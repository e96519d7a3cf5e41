"""Forms of the Configuration tab: MBG connections."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

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
