"""WTForms validators shared by the shell and the blades."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from wtforms import Field, Form
from wtforms.validators import ValidationError


class Email:
    """A deliverable-looking e-mail address (syntax only; no DNS lookups on form submit)."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        try:
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValidationError(
                self.message or f"This is not a valid e-mail address: {exc}"
            ) from None
        field.data = result.normalized
