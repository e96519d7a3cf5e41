"""WTForms validators shared by the shell and the blades."""

from __future__ import annotations

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from markupsafe import Markup
from wtforms import Field, Form
from wtforms.validators import ValidationError

_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_ID = 2**31 - 1  # ids fit every database's integer column


def whole_number(raw: object, maximum: int = MAX_ID) -> int | None:
    """The value of a string of ASCII digits up to `maximum`, else None.

    Not str.isdigit(): it is true for '²' and '٣', which int() refuses or reads unexpectedly."""
    text = str(raw if raw is not None else "").strip()
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


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


# Plain ASCII addresses, the vast majority, are checked by this pattern alone; it accepts only
# what email-validator accepts (a property test holds it to that); anything else goes to it.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def check_email(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None) if `value` is a valid e-mail address, else (None, reason)."""
    match = _PLAIN_EMAIL.fullmatch(value)
    if match and len(match["local"]) <= 64 and len(value) <= 254:
        domain = match["domain"].lower()
        if domain.rsplit(".", 1)[-1] not in SPECIAL_USE_DOMAIN_NAMES:
            return f"{match['local']}@{domain}", None
    try:
        # Only ASCII addresses: many mail servers cannot deliver to others (no SMTPUTF8).
        return validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        ).normalized, None
    except EmailNotValidError as exc:
        return None, f"This is not a valid e-mail address: {exc}"


class Email:
    """A valid e-mail address (syntax only: no DNS look-ups while a form is submitted)."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        normalised, problem = check_email(value)
        if problem:
            raise ValidationError(self.message or problem)
        field.data = normalised
