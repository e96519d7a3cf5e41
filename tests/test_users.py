"""Users tab (R-U1-R-U4, R-U9): Manage view, selections across pages, Create/Modify, PINs."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from factories import all_users, default_profile_id, make_users, user
from helpers import csrf_token, submit
from sqlalchemy import select, text, update

from blade.models import DeploymentUser
from server_manager_stub import db

MANAGE = "/client-deployment/"
NEW = "/client-deployment/users/new"


def valid(**changes) -> dict:
    data = {
        "profile_id": "1",
        "first_name": "Anna",
        "last_name": "Becker",
        "directory_number": "4041",
        "email": "anna.becker@example.com",
        "pbx_sip_host": "pbx.example.com",
        "pbx_sip_username": "4041",
        "pbx_sip_password": "pbx-secret-1",
        "mbg_sip_username": "tw4041",
        "mbg_sip_password": "mbg-secret-1",
        "mcs_host": "micollab.example.com",
        "mcs_username": "abecker",
        "mcs_password": "mcs-secret-1",
        "deployment_pin": "",
    }
    data.update(changes)
    return data


def act(client, action, **selection):
    data = {"action": action, **selection}
    return client.post(
        "/client-deployment/users/action", data={**data, "csrf_token": csrf_token(client, MANAGE)}
    )


# --- Manage view ------------------------------------------------------------------------------


def test_manage_view_shows_the_spec_columns_and_pages(app, admin):
    make_users(app, 60)
    page = admin.get(MANAGE).text
    for column in (
        "Profile",
        "Firstname",
        "Lastname",
        "Number",
        "MBG SIP User name",
        "MiCollab Client Service Account",
        "Email address",
        "Deployed",
        "Downloaded",
    ):
        assert f">{column}" in page
    assert "User0000" in page and "User0049" in page and "User0050" not in page
    assert "1–50 of 60" in page
    second = admin.get(MANAGE + "?page=2").text
    assert "User0050" in second and "User0059" in second and "User0049" not in second
    small = admin.get(MANAGE + "?size=25&page=3").text
    assert "User0050" in small and "51–60 of 60" in small


@pytest.mark.parametrize(
    ("sort", "desc", "first"),
    [
        ("last_name", "", "User0000"),
        ("last_name", "1", "User0011"),
        ("number", "1", "User0011"),
        ("email", "", "User0000"),
        ("first_name", "1", "User0011"),
    ],
)
def test_manage_view_sorts_server_side(app, admin, sort, desc, first):
    make_users(app, 12)
    page = admin.get(f"{MANAGE}?sort={sort}&desc={desc}&size=25").text
    body = page.split("<tbody>")[1]
    names = [part.split("</a>")[0] for part in body.split('">')[1:] if part.startswith("User")]
    assert names[0] == first


def test_sorting_ignores_case(app, admin):
    make_users(app, 3, last_name=lambda i: ["beta", "Alpha", "gamma"][i])
    body = admin.get(MANAGE).text.split("<tbody>")[1]
    assert body.index(">Alpha<") < body.index(">beta<") < body.index(">gamma<")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("user0003", {"User0003"}),
        ("USER000", {f"User000{i}" for i in range(10)}),
        ("5007", {"User0007"}),
        ("tw5011", {"User0011"}),
        ("mcs0002", {"User0002"}),
        ("first0004 user0004", {"User0004"}),
        ("first0004 user0005", set()),
        ("user0001@example", {"User0001"}),
        ("nobody", set()),
    ],
)
def test_search_over_names_number_email_and_sip_user_names(app, admin, q, expected):
    make_users(app, 12)
    page = admin.get(f"{MANAGE}?q={q}&size=100").text
    shown = {f"User{i:04}" for i in range(12) if f">User{i:04}</a>" in page}
    assert shown == expected
    if not expected:
        assert "No user matches" in html.unescape(page)


def test_bad_paging_arguments_are_tamed(app, admin):
    make_users(app, 3)
    for query in (
        "page=-1",
        "page=abc",
        "size=7",
        "size=99999999999",
        "sort=password",
        "page=999999",
    ):
        response = admin.get(f"{MANAGE}?{query}")
        assert response.status_code == 200, query
        assert "User0000" in response.text


# --- selections across pages ----------------------------------------------------------------


def test_select_all_across_pages_with_a_filter_and_exclusions_acts_on_exactly_those(app, admin):
    ids = make_users(app, 120)
    # "user01" matches User0100-User0119: 20 users on several 5-row pages; two are excluded.
    matching = [i for i, n in zip(ids, range(120), strict=True) if f"{n:04}".startswith("01")]
    excluded = matching[3:5]
    response = act(admin, "delete", select_all="1", q="user01", excluded=excluded)
    assert "Delete 18 user(s)?" in response.text
    response = admin.post(
        "/client-deployment/users/action",
        data={
            "action": "delete",
            "confirmed": "1",
            "select_all": "1",
            "q": "user01",
            "excluded": excluded,
            "csrf_token": csrf_token(admin, MANAGE),
        },
    )
    assert response.status_code == 303
    left = {u.id for u in all_users(app)}
    assert left == set(ids) - (set(matching) - set(excluded))
    assert len(left) == 102


def test_selected_rows_only(app, admin):
    ids = make_users(app, 5)
    admin.post(
        "/client-deployment/users/action",
        data={
            "action": "delete",
            "confirmed": "1",
            "ids": [ids[1], ids[3]],
            "csrf_token": csrf_token(admin, MANAGE),
        },
    )
    assert [u.id for u in all_users(app)] == [ids[0], ids[2], ids[4]]


def test_an_action_without_a_selection_says_so(app, admin):
    make_users(app, 2)
    response = act(admin, "delete")
    assert response.status_code == 303
    assert "Select users first" in admin.get(MANAGE).text
    assert len(all_users(app)) == 2


def test_delete_asks_before_it_deletes(app, admin):
    ids = make_users(app, 2)
    page = act(admin, "delete", ids=[ids[0]]).text
    assert "Delete 1 user(s)?" in page and 'name="confirmed" value="1"' in page
    assert len(all_users(app)) == 2


# --- Create New User / Modify ---------------------------------------------------------------


def test_create_a_user_with_every_field_secrets_encrypted(app, admin):
    response = submit(admin, NEW, valid(deployment_pin="482915"))
    assert response.status_code == 303
    (created,) = all_users(app)
    assert (created.last_name, created.email, created.source) == (
        "Becker",
        "anna.becker@example.com",
        "manual",
    )
    assert created.pbx_sip_password == "pbx-secret-1" and created.deployment_pin == "482915"
    with app.app_context():
        raw = (
            db.get_session()
            .execute(
                text(
                    "SELECT pbx_sip_password, mbg_sip_password, mcs_password, deployment_pin "
                    "FROM cd_user"
                )
            )
            .one()
        )
    for secret, plain in zip(
        raw, ["pbx-secret-1", "mbg-secret-1", "mcs-secret-1", "482915"], strict=True
    ):
        assert plain not in secret
    # Secrets never travel back to the browser.
    page = admin.get(f"/client-deployment/users/{created.id}").text
    for plain in ("pbx-secret-1", "mbg-secret-1", "mcs-secret-1", "482915"):
        assert plain not in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"last_name": ""}, "last_name", "Last name is required."),
        ({"last_name": "x" * 101}, "last_name", "Last name has at most 100 characters."),
        ({"email": ""}, "email", "Email address is required."),
        ({"email": "anna(at)example.com"}, "email", "This is not a valid e-mail address"),
        ({"email": "jürgen@example.com"}, "email", "This is not a valid e-mail address"),
        ({"directory_number": "40-41"}, "directory_number", "digits, * and #"),
        ({"pbx_sip_host": "pbx example com"}, "pbx_sip_host", "Enter a host name only"),
        ({"mcs_host": "300.1.1.1"}, "mcs_host", "This is not a valid IPv4 address."),
        ({"pbx_sip_username": "a b"}, "pbx_sip_username", "no spaces or control characters"),
        ({"mbg_sip_username": "tw\t1"}, "mbg_sip_username", "contains a control character"),
        ({"deployment_pin": "123"}, "deployment_pin", "The Deployment PIN is 4 to 20 digits"),
        ({"deployment_pin": "12345678901234567890123"}, "deployment_pin", "at most 20 characters"),
        ({"deployment_pin": "12a4"}, "deployment_pin", "4 to 20 digits"),
        ({"profile_id": "999"}, "profile_id", "Not a valid choice"),
    ],
)
def test_create_refuses_bad_values_beside_the_field(app, admin, changes, field, message):
    response = submit(admin, NEW, valid(**changes))
    assert response.status_code == 422
    assert message in html.unescape(response.text.split(f'id="{field}-error">')[1].split("</p>")[0])
    assert all_users(app) == []


def test_a_number_with_hash_is_accepted_with_a_warning(app, admin):
    response = submit(admin, NEW, valid(directory_number="1#001"), follow_redirects=True)
    assert "contains #: it cannot be synchronised over a remote MBG" in response.text
    assert all_users(app)[0].directory_number == "1#001"


def test_modify_keeps_secrets_left_empty_and_changes_the_rest(app, admin):
    submit(admin, NEW, valid())
    uid = all_users(app)[0].id
    url = f"/client-deployment/users/{uid}"
    response = submit(
        admin,
        url,
        valid(first_name="Annie", pbx_sip_password="", mbg_sip_password="new-mbg-secret"),
    )
    assert response.status_code == 303
    changed = user(app, uid)
    assert changed.first_name == "Annie" and changed.first_name_key == "annie"
    assert changed.pbx_sip_password == "pbx-secret-1"
    assert changed.mbg_sip_password == "new-mbg-secret"


def test_changing_the_user_id_of_a_deployed_user_warns_about_a_factory_reset(app, admin):
    submit(admin, NEW, valid())
    uid = all_users(app)[0].id
    with app.app_context(), db.get_db(app).transaction() as s:
        s.execute(update(DeploymentUser).values(deployed_at=datetime.now(UTC)))
    page = submit(
        admin,
        f"/client-deployment/users/{uid}",
        valid(mcs_username="anna.b"),
        follow_redirects=True,
    ).text
    assert "needs a factory reset and a new deployment" in page
    page = submit(
        admin,
        f"/client-deployment/users/{uid}",
        valid(mcs_username="anna.b", first_name="A"),
        follow_redirects=True,
    ).text
    assert "needs a factory reset and a new deployment" not in page  # unchanged: no warning


def test_profile_hosts_are_shown_read_only_from_the_profile(app, admin):
    page = admin.get(NEW).text
    assert "MBG SIP host" in page and "not used (Use Teleworker is off)" in page


# --- imported users are read-only -----------------------------------------------------------


def _imported(app) -> int:
    ids = make_users(app, 1)
    with app.app_context(), db.get_db(app).transaction() as s:
        s.execute(update(DeploymentUser).values(source="mbg", source_record_id="u000001"))
    return ids[0]


def test_an_imported_user_is_shown_read_only(app, admin):
    uid = _imported(app)
    page = admin.get(f"/client-deployment/users/{uid}").text
    assert "imported, read-only" in page and 'name="last_name"' not in page
    assert "Save" not in page


def test_a_crafted_post_cannot_modify_an_imported_user(app, admin):
    uid = _imported(app)
    response = admin.post(
        f"/client-deployment/users/{uid}",
        data={**valid(last_name="Hacked"), "csrf_token": csrf_token(admin, MANAGE)},
    )
    assert response.status_code == 403
    assert "cannot be modified here" in response.text
    assert user(app, uid).last_name == "User0000"


# --- Deployment PIN -------------------------------------------------------------------------


def test_generate_pin_is_random_six_digits_stored_encrypted_and_shown_once(app, admin):
    submit(admin, NEW, valid())
    uid = all_users(app)[0].id
    pins = set()
    for _ in range(3):
        page = submit(
            admin, f"/client-deployment/users/{uid}/pin", page=f"/client-deployment/users/{uid}"
        ).text
        pin = page.split('<code id="pin">')[1].split("<")[0]
        assert pin.isdigit() and len(pin) == 6
        assert user(app, uid).deployment_pin == pin
        pins.add(pin)
    assert len(pins) == 3
    edit = admin.get(f"/client-deployment/users/{uid}").text
    assert pin not in edit and "set (hidden)" in edit
    shown = submit(
        admin, f"/client-deployment/users/{uid}/pin/show", page=f"/client-deployment/users/{uid}"
    ).text
    assert f'<code id="pin">{pin}</code>' in shown


def test_create_form_offers_generate_pin(admin):
    assert 'data-generate-pin="#deployment_pin"' in admin.get(NEW).text


def test_profiles_in_use_cannot_be_deleted(app, admin):
    from test_profiles import post
    from test_profiles import valid as profile

    assert post(admin, profile(name="Branch")).status_code == 303
    with app.app_context():
        from blade.models import Profile

        pid = db.get_session().scalar(select(Profile.id).where(Profile.name == "Branch"))
    make_users(app, 3, profile_id=pid)
    listing = admin.get("/client-deployment/profiles").text
    assert "<td>3</td>" in listing.split(">Branch</a>")[1].split("</tr>")[0]
    page = submit(
        admin,
        f"/client-deployment/profiles/{pid}/delete",
        page="/client-deployment/profiles",
        follow_redirects=True,
    ).text
    assert "is used by 3 user(s); move them to another profile first" in html.unescape(page)
    assert default_profile_id(app) != pid


def test_the_deployment_pin_can_be_removed_but_not_on_imported_users(app, admin):
    submit(admin, NEW, valid(deployment_pin="482915"))
    uid = all_users(app)[0].id
    page = f"/client-deployment/users/{uid}"
    assert "Remove PIN" in admin.get(page).text
    assert submit(admin, f"{page}/pin/remove", page=page).status_code == 303
    assert user(app, uid).deployment_pin is None
    imported = _imported(app)
    for action in ("pin", "pin/remove"):
        response = submit(admin, f"/client-deployment/users/{imported}/{action}", page=page)
        assert response.status_code == 403
    assert user(app, imported).deployment_pin is None
