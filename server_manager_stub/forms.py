"""Forms of the shell's own pages; every validation rule of those pages lives here."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from .auth import MIN_PASSWORD_LENGTH
from .events import SEVERITIES
from .validators import Email


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField(
        "User name", validators=[DataRequired("Enter your user name."), Length(max=64)]
    )
    password = PasswordField(
        "Password", validators=[DataRequired("Enter your password."), Length(max=1024)]
    )


class NewPasswordMixin:
    """A new password typed twice."""

    new_password = PasswordField(
        "New password",
        validators=[
            DataRequired("Enter a new password."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=1024,
                message=f"Use at least {MIN_PASSWORD_LENGTH} characters.",
            ),
        ],
    )
    confirm_password = PasswordField(
        "New password again",
        validators=[
            DataRequired("Type the new password again."),
            EqualTo("new_password", "The two new passwords are not the same."),
        ],
    )


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    """Change one's own password."""

    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=1024)],
    )

    def validate_new_password(self, field: PasswordField) -> None:
        """The new password must differ from the current one."""
        if field.data and field.data == self.current_password.data:
            raise ValidationError("Choose a password different from the current one.")


class AdminCreateForm(FlaskForm):
    """A new administrator (the password is generated and shown once)."""

    username = StringField(
        "User name",
        validators=[
            DataRequired("Enter a user name."),
            Length(max=64, message="Use at most 64 characters."),
            Regexp(
                r"^[A-Za-z0-9._@-]+$",
                message="Use letters, digits, dots, dashes, underscores or @ only.",
            ),
        ],
    )
    is_primary = BooleanField("Primary administrator")


class AlertSettingsForm(FlaskForm):
    """Where alarm e-mails go and from which severity."""

    recipient = EmailField(
        "Send alarms by e-mail to", validators=[Optional(), Length(max=320), Email()]
    )
    min_severity = SelectField(
        "Minimum severity",
        choices=[SelectChoice(s, s.capitalize()) for s in SEVERITIES if s != "cleared"],
        default="major",
    )
