"""CSV template, import and export of users (R-U6-R-U8), each rule with its own case."""

from __future__ import annotations

import csv
import html
import io

import pytest
from factories import all_users, make_users
from helpers import csrf_token
from sqlalchemy import text, update

from blade.models import DeploymentUser
from server_manager_stub import db

PAGE = "/client-deployment/users/csv"


def upload(
    client,
    content: bytes | str,
    *,
    profile="1",
    partial=False,
    overwrite=False,
    filename="users.csv",
    follow=True,
):
    if isinstance(content, str):
        content = content.encode("utf-8")
    data = {
        "file": (io.BytesIO(content), filename),
        "profile": profile,
        "csrf_token": csrf_token(client, PAGE),
    }
    if partial:
        data["partial"] = "y"
    if overwrite:
        data["overwrite"] = "y"
    return client.post(PAGE, data=data, content_type="multipart/form-data", follow_redirects=follow)


def page_text(response) -> str:
    return html.unescape(response.text)


def names(app) -> list[str]:
    return [u.last_name for u in all_users(app)]


# --- the template ----------------------------------------------------------------------------


def test_the_template_has_every_column_and_one_example_row_and_imports(app, admin):
    response = admin.get("/client-deployment/users/csv/template")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == [
        "ID",
        "Profile",
        "Firstname",
        "Lastname",
        "Number",
        "Email",
        "PBX SIP Host",
        "PBX SIP User name",
        "PBX SIP Password",
        "MBG SIP User name",
        "MBG SIP Password",
        "MiCollab Client Service Host",
        "MiCollab Client Service User name",
        "MiCollab Client Service Password",
        "Deployment PIN",
    ]
    assert len(rows) == 2 and rows[1][3] == "Becker"
    result = page_text(upload(admin, response.data, profile="csv"))
    assert "1 user(s) created" in result.replace("<strong>", "").replace("</strong>", "")
    (created,) = all_users(app)
    assert created.mbg_sip_password == "mbg-secret" and created.deployment_pin == "482915"


# --- format rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "description"),
    [
        ("Email,Number,Lastname\na@example.com,4001,Adams\n", "reordered columns"),
        ("lastname,EMAIL\nAdams,a@example.com\n", "header case"),
        ("Last Name,E-mail\nAdams,a@example.com\n", "header spelling variants"),
        ("\ufeffLastname,Email\nAdams,a@example.com\n", "UTF-8 BOM"),
        ("Lastname;Email;Firstname\nAdams;a@example.com;Ann\n", "semicolons"),
        ("Lastname,Email\r\nAdams,a@example.com\r\n", "CRLF"),
        ('Lastname,Email,Firstname\n"Adams, Jr.",a@example.com,"Ann ""Nan"""\n', "quoted"),
        ("Lastname,Email\n\nAdams,a@example.com\n,\n", "blank lines"),
    ],
)
def test_accepted_file_formats(app, admin, content, description):
    result = page_text(upload(admin, content))
    assert "row(s) rejected" in result, description
    users = all_users(app)
    assert len(users) == 1, description
    assert users[0].last_name in ("Adams", "Adams, Jr.")
    assert users[0].email == "a@example.com"


def test_utf16_and_cp1252_files(app, admin):
    upload(admin, "Lastname,Email\nMüller,m@example.com\n".encode("utf-16"))
    response = upload(admin, "Lastname,Email\nGarçon,g@example.com\n".encode("cp1252"))
    assert "it was read as Windows-1252" in page_text(response)
    assert names(app) == ["Müller", "Garçon"]


# --- row rules, all-or-nothing and partial ---------------------------------------------------

MIXED = (
    "Lastname,Email,Number\n"
    "Adams,adams@example.com,4001\n"
    ",nolast@example.com,4002\n"
    "Baker,not-an-address,4003\n"
    "Clark,clark@example.com,4004\n"
)


def test_one_bad_row_imports_nothing_without_partial_import(app, admin):
    result = page_text(upload(admin, MIXED))
    assert "Nothing was imported: 2 row(s) are invalid" in result
    assert "<td>3</td><td>Last name is required.</td>" in result
    assert "<td>4</td><td>This is not a valid e-mail address" in result
    assert all_users(app) == []


def test_partial_import_imports_the_valid_rows_and_offers_the_rejected_ones(app, admin):
    response = upload(admin, MIXED, partial=True)
    result = page_text(response)
    assert names(app) == ["Adams", "Clark"]
    assert "<strong>2</strong> user(s) created" in result
    assert "<strong>2</strong> row(s) rejected" in result
    link = response.text.split('href="/client-deployment/users/csv/results/')[1].split('"')[0]
    rejected = admin.get(f"/client-deployment/users/csv/results/{link}")
    rows = list(csv.reader(io.StringIO(rejected.data.decode("utf-8-sig"))))
    assert rows[0] == ["Lastname", "Email", "Number", "Import problem"]
    assert [r[:3] for r in rows[1:]] == [
        ["", "nolast@example.com", "4002"],
        ["Baker", "not-an-address", "4003"],
    ]
    # Fix them and import the same file again: the problem column is ignored.
    rows[1][0] = "Nolan"
    rows[2][1] = "baker@example.com"
    fixed = io.StringIO()
    csv.writer(fixed).writerows(rows)
    result = page_text(upload(admin, fixed.getvalue()))
    assert "<strong>2</strong> user(s) created" in result
    assert sorted(names(app)) == ["Adams", "Baker", "Clark", "Nolan"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "Lastname,Email,Profile\nAdams,a@example.com,Nowhere\n",
            "There is no profile named 'Nowhere'",
        ),
        ("Lastname,Email,Profile\nAdams,a@example.com,\n", "The Profile column is empty"),
    ],
)
def test_from_csv_needs_an_existing_profile_in_every_row(app, admin, content, message):
    result = page_text(upload(admin, content, profile="csv"))
    assert message in result and all_users(app) == []


def test_from_csv_assigns_each_rows_profile(app, admin):
    from test_profiles import post, valid

    post(admin, valid(name="Branch"))
    upload(
        admin,
        "Lastname,Email,Profile\nA,a@example.com,branch\nB,b@example.com,DEFAULT\n",
        profile="csv",
    )
    users = all_users(app)
    assert [u.profile_id for u in users][1] == 1 and users[0].profile_id != 1


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (
            "Lastname,Email\nA,a@example.com\n",
            {"profile": "csv"},
            "From CSV needs a Profile column",
        ),
        (
            "Lastname,Email\nA,a@example.com\n",
            {"overwrite": True},
            "Allow overwrite import needs an ID column",
        ),
        ("Firstname,Email\nAnn,a@example.com\n", {}, "The file needs the column(s) Lastname"),
        ("", {}, "The file is empty."),
        ("Lastname,Email\n", {}, "The file has a header but no users."),
        ("Lastname,Lastname,Email\nA,B,a@example.com\n", {}, "appears twice in the header"),
        ("Adams,adams@example.com\n", {}, "The first line must be the header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), {}, "This is not a CSV file"),
        (b"PK\x03\x04" + bytes(100), {"filename": "users.xlsx"}, "spreadsheet workbook, not a CSV"),
    ],
)
def test_files_refused_as_a_whole_change_nothing(app, admin, content, options, message):
    make_users(app, 1)
    response = upload(admin, content, **options)
    assert response.status_code == 422
    error = page_text(response).split('id="file-error">')[1].split("</p>")[0]
    assert message in error
    assert names(app) == ["User0000"]


def test_a_file_over_the_upload_limit_gets_a_clear_message(app, admin):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = upload(admin, "Lastname,Email\n" + "A,a@example.com\n" * 500)
    assert response.status_code == 413
    assert "larger than the limit of 50 MB (MAX_UPLOAD_MB). Nothing was changed." in response.text
    assert all_users(app) == []


def test_a_row_with_the_wrong_number_of_values(app, admin):
    result = page_text(upload(admin, "Lastname,Email\nA,a@example.com,extra\n", partial=True))
    assert "this line has 3 values but the header has 2 columns".capitalize() in result


def test_line_numbers_count_lines_of_the_file(app, admin):
    content = 'Lastname,Email,Firstname\nA,a@example.com,"two\nlines"\nB,bad,x\n'
    result = page_text(upload(admin, content, partial=True))
    assert "<td>4</td><td>This is not a valid e-mail address" in result


def test_a_line_break_inside_a_value_is_refused(app, admin):
    result = page_text(upload(admin, 'Lastname,Email,Firstname\nA,a@example.com,"Ann\nMarie"\n'))
    assert "First name contains a control character" in result and all_users(app) == []


def test_a_number_with_hash_is_imported_with_a_warning(app, admin):
    result = page_text(upload(admin, "Lastname,Email,Number\nA,a@example.com,1#001\n"))
    assert "<td>2</td><td>The directory number 1#001 contains #" in result
    assert all_users(app)[0].directory_number == "1#001"


def test_unknown_columns_are_reported_and_ignored(app, admin):
    result = page_text(upload(admin, "Lastname,Email,Shoe size\nA,a@example.com,44\n"))
    assert "The column 'Shoe size' is not known and was ignored." in result
    assert names(app) == ["A"]


# --- overwrite import --------------------------------------------------------------------------


def test_overwrite_updates_by_id_empty_column_clears_absent_column_keeps(app, admin):
    (uid,) = make_users(
        app, 1, first_name="Ann", directory_number="4001", mbg_sip_password="keep-me"
    )
    content = (
        f"ID,Lastname,Email,Firstname\n{uid},Adams,new@example.com,\n,Brand,b@example.com,Bo\n"
    )
    result = page_text(upload(admin, content, overwrite=True))
    assert "<strong>1</strong> user(s) created" in result
    assert "<strong>1</strong> user(s) updated" in result
    updated, created = all_users(app)
    assert (updated.id, updated.last_name, updated.email) == (uid, "Adams", "new@example.com")
    assert updated.first_name == "" and updated.first_name_key == ""  # present but empty
    assert updated.directory_number == "4001"  # absent column: kept
    assert updated.mbg_sip_password == "keep-me"
    assert created.last_name == "Brand"


def test_overwrite_refuses_unknown_ids_and_imported_users(app, admin):
    (uid,) = make_users(app, 1)
    with app.app_context(), db.get_db(app).transaction() as s:
        s.execute(update(DeploymentUser).values(source="mbg", source_record_id="u1"))
    content = f"ID,Lastname,Email\n{uid},Hacked,h@example.com\n99999,Ghost,g@example.com\n"
    result = page_text(upload(admin, content, overwrite=True, partial=True))
    assert f"User {uid} was imported from an MBG and cannot be changed by CSV" in result
    assert "No user has the ID 99999" in result
    assert names(app) == ["User0000"]


def test_without_overwrite_the_id_column_is_ignored(app, admin):
    (uid,) = make_users(app, 1)
    upload(admin, f"ID,Lastname,Email\n{uid},Twin,t@example.com\n")
    assert names(app) == ["User0000", "Twin"]


def test_secret_columns_are_stored_encrypted(app, admin):
    upload(admin, "Lastname,Email,PBX SIP Password,Deployment PIN\nA,a@example.com,s3cr3t,1234\n")
    (created,) = all_users(app)
    assert (created.pbx_sip_password, created.deployment_pin) == ("s3cr3t", "1234")
    with app.app_context():
        raw = db.get_session().execute(text("SELECT pbx_sip_password FROM cd_user")).scalar()
    assert "s3cr3t" not in raw


# --- export ---------------------------------------------------------------------------------

SECRETS = {
    "pbx_sip_password": "pbx-SECRET",
    "mbg_sip_password": "mbg-SECRET",
    "mcs_password": "mcs-SECRET",
    "deployment_pin": "987654",
}


def _export(admin, **selection) -> bytes:
    response = admin.post(
        "/client-deployment/users/action",
        data={
            "action": "export",
            "csrf_token": csrf_token(admin, "/client-deployment/"),
            **selection,
        },
    )
    assert response.mimetype == "text/csv"
    return response.data


def test_export_never_contains_a_secret_and_neutralises_formulas(app, admin):
    make_users(app, 3, **SECRETS, first_name="=cmd|' /C calc'!A0", directory_number="+4930")
    data = _export(admin, select_all="1").decode("utf-8-sig")
    for secret in SECRETS.values():
        assert secret not in data
    assert "'=cmd|' /C calc'!A0" in data and "'+4930" in data
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0] == [
        "ID",
        "Profile",
        "Firstname",
        "Lastname",
        "Number",
        "Email",
        "PBX SIP Host",
        "PBX SIP User name",
        "MBG SIP User name",
        "MiCollab Client Service Host",
        "MiCollab Client Service User name",
    ]
    assert len(rows) == 4
    assert all(line.startswith('"') for line in data.strip().splitlines())  # every field quoted


def test_export_then_import_with_overwrite_changes_nothing(app, admin):
    make_users(app, 5, **SECRETS, first_name=lambda i: ["=SUM(A1)", "@x", "-1", "Ann", "Zoë"][i])
    columns = (
        "id",
        "profile_id",
        "first_name",
        "last_name",
        "directory_number",
        "email",
        "pbx_sip_host",
        "pbx_sip_username",
        "pbx_sip_password",
        "mbg_sip_username",
        "mbg_sip_password",
        "mcs_host",
        "mcs_username",
        "mcs_password",
        "deployment_pin",
        "first_name_key",
        "last_name_key",
        "email_key",
        "source",
    )

    def snapshot():
        return [tuple(getattr(u, c) for c in columns) for u in all_users(app)]

    before = snapshot()
    exported = _export(admin, select_all="1")
    result = page_text(upload(admin, exported, overwrite=True, profile="csv"))
    assert "<strong>5</strong> user(s) updated" in result
    assert "<strong>0</strong> user(s) created" in result
    assert snapshot() == before


def test_export_of_a_filtered_selection_with_exclusions(app, admin):
    ids = make_users(app, 30)
    data = _export(admin, select_all="1", q="user001", excluded=[ids[12]]).decode("utf-8-sig")
    exported = {int(r[0]) for r in list(csv.reader(io.StringIO(data)))[1:]}
    assert exported == {ids[i] for i in range(10, 20)} - {ids[12]}


def test_a_damaged_utf16_file_is_refused_as_a_whole(app, admin):
    broken = "Lastname,Email\nA,a@example.com\n".encode("utf-16") + b"\x00"
    response = upload(admin, broken)
    assert response.status_code == 422
    assert "UTF-16 text but is damaged" in page_text(response)
    assert all_users(app) == []


def test_a_profile_name_that_looks_like_a_formula_survives_export_and_import(app, admin):
    from test_profiles import post, valid

    post(admin, valid(name="-Sales"))
    upload(admin, "Lastname,Email,Profile\nA,a@example.com,-Sales\n", profile="csv")
    before = [(u.id, u.profile_id) for u in all_users(app)]
    exported = _export(admin, select_all="1")
    assert b"'-Sales" in exported
    result = page_text(upload(admin, exported, overwrite=True, profile="csv"))
    assert "<strong>1</strong> user(s) updated" in result
    assert [(u.id, u.profile_id) for u in all_users(app)] == before


def test_changing_the_user_id_of_a_deployed_user_by_csv_warns(app, admin):
    from datetime import UTC, datetime

    (uid,) = make_users(app, 1, mcs_username="old.name")
    with app.app_context(), db.get_db(app).transaction() as s:
        s.execute(update(DeploymentUser).values(deployed_at=datetime.now(UTC)))
    content = f"ID,Lastname,Email,MiCollab Client Service User name\n{uid},A,a@example.com,new\n"
    result = page_text(upload(admin, content, overwrite=True))
    assert "changes from old.name to new: the deployed client needs a factory reset" in result
