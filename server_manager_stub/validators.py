"""WTForms validators shared by the shell and the blades."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from markupsafe import Markup
from wtforms import Field, Form
from wtforms.validators import ValidationError


def wrapper_attrs(field: Field) -> Markup:
    """HTML attributes for a field's wrapper, from validators that offer `wrapper_attrs()`.

    This is how a conditional field tells the page script when to show it (data-hidden-unless).
    """
    merged: dict[str, list[str]] = {}
    for validator in field.validators:
        attrs = getattr(validator, "wrapper_attrs", None)
        if attrs is None:
            continue
        for key, value in attrs().items():
            merged.setdefault(key, []).append(value)
    # Several conditions on one field travel as a JSON list; one stays a single object.
    return Markup("").join(
        Markup(' {}="{}"').format(key, values[0] if len(values) == 1 else f"[{','.join(values)}]")
        for key, values in merged.items()
    )


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
