"""CSV of deployment users (SPEC R-U6-R-U8): template, streaming import, export."""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from server_manager_stub import clock
from server_manager_stub.validators import whole_number

from .forms.users import USER_FIELDS, UserField, check_value, number_warning
from .models import KEYED_COLUMNS, CsvImportRecord, DeploymentUser, Profile

U = DeploymentUser
BATCH = 5000
MAX_SHOWN_PROBLEMS = 1000
PROBLEM_COLUMN = "Import problem"
# Cells an export neutralised against spreadsheet formula injection (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
SECRET_COLUMNS = {f.name for f in USER_FIELDS if f.secret}


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


HEADER_MAP: dict[str, str] = {"id": "id", "profile": "profile", _norm(PROBLEM_COLUMN): "ignore"}
for _f in USER_FIELDS:
    for _h in _f.headers:
        HEADER_MAP[_norm(_h)] = _f.name
FIELD_SPECS = {f.name: f for f in USER_FIELDS}
EXPORT_FIELDS = [f for f in USER_FIELDS if not f.secret]
TEMPLATE_HEADERS = ["ID", "Profile", *(f.headers[0] for f in USER_FIELDS)]


class CsvFileError(ValueError):
    """The file as a whole cannot be imported (nothing was changed)."""


@dataclass
class Problem:
    """A rejected row or a warning, with the line it is on."""

    line: int
    message: str


@dataclass
class ImportResult:
    """What an import did."""

    created: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    file_warnings: list[str] = field(default_factory=list)
    rejected_csv: bytes | None = None
    applied: bool = True

    def add_error(self, line: int, message: str) -> None:
        """Count a rejected row; keep the first ones for display."""
        self.rejected += 1
        if len(self.errors) < MAX_SHOWN_PROBLEMS:
            self.errors.append(Problem(line, message))

    def add_warning(self, line: int, message: str) -> None:
        """Keep a warning for display."""
        if len(self.warnings) < MAX_SHOWN_PROBLEMS:
            self.warnings.append(Problem(line, message))


class ImportRejected(Exception):
    """One row or more were invalid and partial import was not allowed: the caller must roll
    back what the import wrote; `result` says why."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__(f"{result.rejected} row(s) rejected")
        self.result = result


# --- reading the file ---------------------------------------------------------------------------


def _open_text(raw: IO[bytes], result: ImportResult) -> IO[str]:
    """Decode the upload: UTF-8 with or without BOM, UTF-16 with BOM; else cp1252 with a warning."""
    head = raw.read(4096)
    raw.seek(0)
    if not head:
        raise CsvFileError("The file is empty.")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvFileError(
            "This is a spreadsheet workbook, not a CSV file: in the spreadsheet "
            "program use Save as › CSV UTF-8, then import that file."
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if not _decodes(raw, "utf-16"):
            raise CsvFileError(
                "The file starts like UTF-16 text but is damaged (it cannot be "
                "decoded). Save it again as CSV UTF-8."
            )
        return io.TextIOWrapper(raw, encoding="utf-16", newline="")
    if b"\x00" in head:
        raise CsvFileError("This is not a CSV file (it contains binary data).")
    # Check the whole file is UTF-8 before anything is imported: cheap, and no half-read rows.
    if _decodes(raw, "utf-8"):
        encoding = "utf-8-sig"
    else:
        encoding = "cp1252"
        result.file_warnings.append(
            "The file is not UTF-8; it was read as Windows-1252 "
            "(Western European). Check accented names, or save the file "
            "as CSV UTF-8."
        )
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def _decodes(raw: IO[bytes], encoding: str) -> bool:
    """True if the whole stream decodes in `encoding` (read in chunks; rewound after)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := raw.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        raw.seek(0)
    return True


def _choose_delimiter(first_line: str) -> str:
    """',' or ';': whichever splits the header into more known column names."""

    def known(sep: str) -> int:
        return sum(_norm(cell.strip().strip('"')) in HEADER_MAP for cell in first_line.split(sep))

    return ";" if known(";") > known(",") else ","


def _unformula(value: str) -> str:
    """Undo the export's neutralisation: a leading ' before a formula character goes."""
    if value.startswith("'") and value[1:2] in FORMULA_START and len(value) > 1:
        return value[1:]
    return value


@dataclass
class _Columns:
    """The header of a file, mapped to fields."""

    index: dict[str, int]
    raw_header: list[str]


def _read_header(header: list[str], result: ImportResult) -> _Columns:
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = HEADER_MAP.get(_norm(cell))
        if name is None:
            if cell.strip():
                result.file_warnings.append(
                    f"The column '{cell.strip()}' is not known and was ignored."
                )
            continue
        if name == "ignore":
            continue
        if name in index:
            raise CsvFileError(f"The column '{cell.strip()}' appears twice in the header.")
        index[name] = i
    fields = set(index) - {"id", "profile"}
    if not fields and "profile" not in index:
        raise CsvFileError(
            "The first line must be the header naming the columns (Lastname, "
            "Email, …); download the template to see them."
        )
    return _Columns(index, header)


# --- import -------------------------------------------------------------------------------------


def import_csv(
    s: Session,
    raw: IO[bytes],
    *,
    profile_id: int | None,
    partial: bool,
    overwrite: bool,
    now: datetime | None = None,
) -> ImportResult:
    """Import users from CSV bytes in one pass, in batches.

    profile_id None means "From CSV" (a Profile column names each row's profile). Without
    `partial`, one bad row imports nothing: ImportRejected is raised and the caller rolls back.
    """
    now = now or clock.now()
    result = ImportResult()
    text = _open_text(raw, result)
    first = text.readline()
    if not first.strip():
        raise CsvFileError(
            "The file is empty."
            if not first
            else "The first line must be the header naming the columns."
        )
    delimiter = _choose_delimiter(first)
    reader = csv.reader(_chain_first(first, text), delimiter=delimiter)
    columns = _read_header(next(reader), result)
    _check_options(columns, profile_id=profile_id, overwrite=overwrite)
    profiles = {name_key: pid for pid, name_key in s.execute(select(Profile.id, Profile.name_key))}
    if profile_id is not None and profile_id not in profiles.values():
        raise CsvFileError("The chosen profile does not exist any more.")

    rejected_out = _RejectedRows(columns.raw_header)
    try:
        seen_rows = _read_rows(
            reader,
            _Importer(s, columns, profiles, profile_id, overwrite, now, result, rejected_out),
            partial,
            result,
        )
        if not seen_rows:
            raise CsvFileError("The file has a header but no users.")
        result.rejected_csv = rejected_out.finish()
    finally:
        rejected_out.close()
    if result.rejected and not partial:
        result.applied = False
        result.created = result.updated = 0
        raise ImportRejected(result)
    return result


def _read_rows(reader: Any, importer: _Importer, partial: bool, result: ImportResult) -> int:
    """Feed every non-blank row to the importer; return how many there were."""
    seen = 0
    line = reader.line_num
    try:
        for row in reader:
            start, line = line + 1, reader.line_num  # a quoted value may span several lines
            if not any(cell.strip() for cell in row):
                continue
            seen += 1
            importer.add(start, row, stop_writing=bool(result.rejected) and not partial)
    except csv.Error as exc:
        raise CsvFileError(
            f"Line {reader.line_num + 1} cannot be read as CSV ({exc}); nothing was imported."
        ) from None
    importer.flush(stop_writing=bool(result.rejected) and not partial)
    return seen


def _chain_first(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


def _check_options(columns: _Columns, *, profile_id: int | None, overwrite: bool) -> None:
    if overwrite and "id" not in columns.index:
        raise CsvFileError(
            "Allow overwrite import needs an ID column (the user IDs of an export "
            "from this system) to know which users to update. Add it, or import "
            "without overwrite."
        )
    if profile_id is None and "profile" not in columns.index:
        raise CsvFileError(
            "Profile From CSV needs a Profile column naming an existing profile "
            "in every row. Add it, or choose a profile for all rows."
        )
    if not overwrite:
        missing = [
            FIELD_SPECS[n].headers[0] for n in ("last_name", "email") if n not in columns.index
        ]
        if missing:
            raise CsvFileError(
                f"The file needs the column(s) {', '.join(missing)}: they are "
                "mandatory for new users."
            )


class _RejectedRows:
    """The rejected rows as a CSV to fix and import again (spills to disk when large)."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.buffer: Any = None
        self.writer: Any = None

    def add(self, row: list[str], problem: str) -> None:
        if self.buffer is None:  # made on the first rejected row; closed by finish()
            self.buffer = tempfile.SpooledTemporaryFile(  # noqa: SIM115
                max_size=1 << 20, mode="w+", newline="", encoding="utf-8"
            )
            self.writer = csv.writer(self.buffer)
            self.writer.writerow([*self.header, PROBLEM_COLUMN])
        self.writer.writerow([*row, problem])

    def finish(self) -> bytes | None:
        if self.buffer is None:
            return None
        self.buffer.seek(0)
        data = ("\ufeff" + self.buffer.read()).encode("utf-8")
        self.buffer.close()
        self.buffer = None
        return data

    def close(self) -> None:
        """Drop the temporary file (when the import stops early)."""
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None


class _Importer:
    """Validates rows and writes them in batches."""

    def __init__(
        self,
        s: Session,
        columns: _Columns,
        profiles: dict[str, int],
        profile_id: int | None,
        overwrite: bool,
        now: datetime,
        result: ImportResult,
        rejected: _RejectedRows,
    ) -> None:
        self.s, self.profiles, self.profile_id = s, profiles, profile_id
        self.overwrite, self.now, self.result, self.rejected = overwrite, now, result, rejected
        self.width = len(columns.raw_header)
        self.fields: list[tuple[UserField, int]] = [
            (FIELD_SPECS[n], i) for n, i in columns.index.items() if n in FIELD_SPECS
        ]
        self.id_index = columns.index.get("id")
        self.profile_index = columns.index.get("profile")
        present = {spec.name for spec, _ in self.fields}
        self.missing = [n for n in ("last_name", "email") if n not in present]
        self.new_defaults = {
            spec.name: None if spec.secret else ""
            for spec in USER_FIELDS
            if spec.name not in present
        }
        # A chosen profile (or the Profile column) applies to updated users too.
        self.update_columns = sorted(present | {"profile_id"})
        self.pending_new: list[dict[str, Any]] = []
        self.pending_update: list[tuple[int, list[str], dict[str, Any]]] = []

    def add(self, line: int, row: list[str], *, stop_writing: bool) -> None:
        if len(row) != self.width:
            self._reject(
                line,
                row,
                f"this line has {len(row)} values but the header has {self.width} columns",
            )
            return
        values: dict[str, Any] = {}
        problems = []
        for spec, i in self.fields:
            value = _unformula(row[i].strip())
            problem = check_value(spec, value)
            if problem:
                problems.append(problem)
                continue
            if spec.secret:
                values[spec.name] = value or None
            elif spec.name == "email" and value:
                values[spec.name] = _normal_email(value)
            else:
                values[spec.name] = value
        if self.profile_index is not None and self.profile_id is None:
            name = _unformula(row[self.profile_index].strip())
            pid = self.profiles.get(name.lower())
            if pid is None:
                problems.append(
                    f"there is no profile named '{name}'" if name else "the Profile column is empty"
                )
            values["profile_id"] = pid
        elif self.profile_id is not None:
            values["profile_id"] = self.profile_id
        user_id = None
        if self.overwrite and self.id_index is not None and row[self.id_index].strip():
            raw_id = row[self.id_index].strip()
            user_id = whole_number(raw_id)
            if user_id is None:
                problems.append(f"the ID '{raw_id}' is not a user ID of this system")
        if user_id is None:  # a new user: the mandatory columns must be in the file
            problems.extend(
                f"{FIELD_SPECS[n].label} is required for a new user and the file "
                f"has no {FIELD_SPECS[n].headers[0]} column"
                for n in self.missing
            )
        if problems:
            self._reject(line, row, "; ".join(problems))
            return
        warning = number_warning(values.get("directory_number", ""))
        if warning:
            self.result.add_warning(line, warning)
        if stop_writing:
            return
        if user_id is not None:
            self.pending_update.append((line, row, {"id": user_id, **values}))
        else:
            self.pending_new.append(values)
        if len(self.pending_new) + len(self.pending_update) >= BATCH:
            self.flush(stop_writing=False)

    def _reject(self, line: int, row: list[str], message: str) -> None:
        self.result.add_error(line, message[0].upper() + message[1:])
        self.rejected.add(row, message)

    def flush(self, *, stop_writing: bool) -> None:
        if stop_writing:
            self.pending_new.clear()
            self.pending_update.clear()
            return
        if self.pending_new:
            rows = [self._new_row(v) for v in self.pending_new]
            self.s.execute(insert(U.__table__), rows)
            self.result.created += len(rows)
            self.pending_new.clear()
        if self.pending_update:
            self._apply_updates()

    def _new_row(self, values: dict[str, Any]) -> dict[str, Any]:
        row = {
            **self.new_defaults,
            **values,
            "source": "csv",
            "source_connection_id": None,
            "source_record_id": None,
            "deployed_at": None,
            "downloaded_at": None,
            "force_config": False,
            "created_at": self.now,
            "updated_at": self.now,
        }
        for name in KEYED_COLUMNS:
            row[f"{name}_key"] = row[name].lower()
        return row  # the secret columns' type encrypts them on the way in

    def _apply_updates(self) -> None:
        ids = [v["id"] for _, _, v in self.pending_update]
        existing = {
            row.id: row
            for row in self.s.execute(
                select(U.id, U.source, U.deployed_at, U.mcs_username).where(U.id.in_(ids))
            )
        }
        rows = []
        for line, raw_row, values in self.pending_update:
            found = existing.get(values["id"])
            source = found.source if found is not None else None
            if (
                found is not None
                and found.deployed_at
                and "mcs_username" in values
                and values["mcs_username"] != found.mcs_username
            ):
                self.result.add_warning(
                    line,
                    (
                        f"The MiCollab Client Service user name of user {values['id']} "
                        f"changes from {found.mcs_username or '(none)'} to "
                        f"{values['mcs_username'] or '(none)'}: the deployed client needs a "
                        "factory reset and a new deployment."
                    ),
                )
            if found is None:
                self._reject(
                    line,
                    raw_row,
                    f"no user has the ID {values['id']} (IDs come from an export of this system)",
                )
                continue
            if source in ("mbg", "directory"):
                self._reject(
                    line,
                    raw_row,
                    f"user {values['id']} was imported from an MBG and "
                    "cannot be changed by CSV; change it on the MBG and "
                    "use Sync data",
                )
                continue
            row = {f"b_{k}": values.get(k) for k in self.update_columns}
            row["b_id"] = values["id"]
            for name in KEYED_COLUMNS:
                if name in self.update_columns:
                    row[f"b_{name}_key"] = (values[name] or "").lower()
            rows.append(row)
        self.pending_update.clear()
        if not rows:
            return
        assignments = {k: bindparam(f"b_{k}") for k in self.update_columns}
        for name in KEYED_COLUMNS:
            if name in self.update_columns:
                assignments[f"{name}_key"] = bindparam(f"b_{name}_key")
        assignments["updated_at"] = bindparam("b_updated_at")
        for row in rows:
            row["b_updated_at"] = self.now
        stmt = update(U.__table__).where(U.__table__.c.id == bindparam("b_id")).values(assignments)
        self.s.connection().execute(stmt, rows)
        self.result.updated += len(rows)


def _normal_email(value: str) -> str:
    from server_manager_stub.validators import check_email

    return check_email(value)[0] or value


# --- export and template ----------------------------------------------------------------------


def neutralise(value: str) -> str:
    """Prefix ' to a cell a spreadsheet would run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def export_rows(users: Iterable[DeploymentUser], profiles: dict[int, str]) -> Iterator[list[str]]:
    """Header then one row per user: ID, Profile and every non-secret column."""
    yield ["ID", "Profile", *(f.headers[0] for f in EXPORT_FIELDS)]
    for user in users:
        yield [
            str(user.id),
            neutralise(profiles.get(user.profile_id, "")),
            *(neutralise(getattr(user, f.name) or "") for f in EXPORT_FIELDS),
        ]


def write_csv(rows: Iterable[list[str]], out: IO[str]) -> None:
    """Write rows with every field quoted, as UTF-8 with BOM (Excel opens it right)."""
    out.write("\ufeff")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows(rows)


def template_rows() -> list[list[str]]:
    """The template: every column the import knows, and one example user."""
    example = ["", "Default", *(f.example for f in USER_FIELDS)]
    return [TEMPLATE_HEADERS, example]


def purge_results(s: Session, now: datetime, app: Any) -> None:
    """Scheduled check: import results (and their rejected rows) are kept for one day."""
    from datetime import timedelta

    s.execute(delete(CsvImportRecord).where(CsvImportRecord.created_at < now - timedelta(days=1)))
