"""Forms of the Users tab's bulk pages: CSV import and import of MBG records."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectChoice, SelectField


class CsvImportForm(FlaskForm):
    """A CSV file and how to import it."""

    file = FileField(
        "CSV file",
        validators=[FileRequired("Choose the CSV file to import.")],
        description="UTF-8 (with or without BOM), separated by , or ;. The first "
        "line names the columns, in any order.",
    )
    profile = SelectField(
        "Profile",
        coerce=str,
        validate_choice=True,
        description="The profile of every imported user, or From CSV: then "
        "a Profile column names it in each row.",
    )
    partial = BooleanField(
        "Allow partial import",
        description="Import the valid rows and skip the invalid ones. Without "
        "it, one invalid row imports nothing.",
    )
    overwrite = BooleanField(
        "Allow overwrite import",
        description="Rows whose ID is a user of this system update that "
        "user instead of adding a new one (needs an ID column, "
        "as in an export).",
    )

    def __init__(self, *args: Any, profiles: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile.choices = [SelectChoice(str(i), name) for i, name in profiles] + [
            SelectChoice("csv", "From CSV")
        ]


class RecordImportForm(FlaskForm):
    """The profile that imported records get."""

    profile_id = SelectField("Profile for the imported users", coerce=str, validate_choice=True)

    def __init__(self, *args: Any, profiles: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile_id.choices = [SelectChoice(str(i), name) for i, name in profiles]
