"""Import Users from the MBG stand-in over loopback, and Sync data (R-U5, R-MBG6)."""

from __future__ import annotations

import html

import pytest
from factories import all_users, make_users
from helpers import csrf_token
from test_mbg import _verify

from server_manager_stub.peers.mbg import MbgStandIn

IMPORT = "/client-deployment/users/import"


@pytest.fixture
def standin(tmp_path, clock):
    server = MbgStandIn(
        users=45, admin_password="approve-me", data_dir=tmp_path / "mbg", clock=clock
    ).start()
    yield server
    server.stop()


@pytest.fixture
def config(config, standin):
    return {**config, "MBG_CA_BUNDLE": str(standin.certificate.ca_file), "MBG_TIMEOUT": 3.0}


def import_post(client, connection_id, **data):
    return client.post(
        IMPORT,
        data={
            "connection": connection_id,
            "profile_id": "1",
            "csrf_token": csrf_token(client, IMPORT),
            **data,
        },
    )


def text_of(response) -> str:
    return html.unescape(response.text).replace("<strong>", "").replace("</strong>", "")


def test_the_import_page_lists_records_with_paging(app, admin, standin):
    c = _verify(app, admin, standin)
    page = admin.get(f"{IMPORT}?connection={c.id}&size=25").text
    assert "Page 1 of 2 (45 records)" in page
    assert 'value="u000001"' in page and 'value="u000026"' not in page
    assert 'value="u000026"' in admin.get(f"{IMPORT}?connection={c.id}&size=25&page=2").text


def test_import_selected_records_and_re_import_does_not_duplicate(app, admin, standin):
    c = _verify(app, admin, standin)
    response = import_post(admin, c.id, record_ids=["u000001", "u000002"])
    assert "2 user(s) imported" in text_of(response)
    users = all_users(app)
    assert [(u.source, u.source_record_id) for u in users] == [
        ("mbg", "u000001"),
        ("mbg", "u000002"),
    ]
    record = standin.store.users[0]
    assert (users[0].first_name, users[0].last_name, users[0].mbg_sip_username) == (
        record.first_name,
        record.last_name,
        record.sip_username,
    )
    assert users[0].mbg_sip_password == record.sip_password  # stored encrypted, read back
    page = admin.get(f"{IMPORT}?connection={c.id}").text
    rows = [r for r in page.split("<tr>") if f"<td>{record.sip_username}</td>" in r]
    assert len(rows) == 1
    assert 'value="u000001"' not in rows[0]  # no checkbox: already imported
    assert '<span class="status sent">imported</span>' in rows[0]
    again = import_post(admin, c.id, record_ids=["u000001", "u000003"])
    assert "1 user(s) imported" in text_of(again)
    assert "1 already imported (not duplicated)" in text_of(again)
    assert len(all_users(app)) == 3


def test_select_all_records_across_pages_minus_exclusions(app, admin, standin):
    c = _verify(app, admin, standin)
    response = import_post(admin, c.id, select_all="1", excluded=["u000010", "u000040"])
    assert "43 user(s) imported" in text_of(response)
    imported = {u.source_record_id for u in all_users(app)}
    assert len(imported) == 43 and not {"u000010", "u000040"} & imported


def test_sync_picks_up_a_changed_name_and_reports_a_deleted_record(app, admin, standin):
    c = _verify(app, admin, standin)
    import_post(admin, c.id, record_ids=["u000001", "u000002", "u000003"])
    manual = make_users(app, 1)
    standin.update_user("u000001", last_name="Renamed", directory_number="4999")
    standin.delete_user("u000002")
    ids = [u.id for u in all_users(app)]
    response = admin.post(
        "/client-deployment/users/action",
        data={"action": "sync", "ids": ids, "csrf_token": csrf_token(admin, "/client-deployment/")},
    )
    page = text_of(response)
    assert "1 user(s) updated from their source" in page
    assert "1 already up to date" in page
    assert "1 not imported from a source (nothing to synchronise)" in page
    assert "the record u000002 is no longer on the MBG 'DMZ MBG'" in page
    renamed = next(u for u in all_users(app) if u.source_record_id == "u000001")
    assert (renamed.last_name, renamed.last_name_key, renamed.directory_number) == (
        "Renamed",
        "renamed",
        "4999",
    )
    assert manual[0] in [u.id for u in all_users(app)]


def test_sync_of_many_users_pages_through_the_mbg_once(app, admin, standin):
    c = _verify(app, admin, standin)
    import_post(admin, c.id, select_all="1")
    standin.update_user("u000030", first_name="Zed")
    response = admin.post(
        "/client-deployment/users/action",
        data={
            "action": "sync",
            "select_all": "1",
            "csrf_token": csrf_token(admin, "/client-deployment/"),
        },
    )
    assert "1 user(s) updated from their source" in text_of(response)
    assert "44 already up to date" in text_of(response)


def test_import_without_a_verified_connection_explains_what_to_do(app, admin, standin):
    page = admin.get(IMPORT).text
    assert "No verified MBG connection" in page


def test_a_revoked_connection_shows_its_message_on_the_import_page(app, admin, standin):
    c = _verify(app, admin, standin)
    standin.revoke_all()
    page = html.unescape(admin.get(f"{IMPORT}?connection={c.id}").text)
    assert "the authorization was revoked on the MBG or has expired" in page


def test_import_and_deploy_queues_one_email_per_imported_user(app, admin, standin):
    from sqlalchemy import func, select

    from server_manager_stub import db
    from server_manager_stub.outbox import OutboxMessage

    c = _verify(app, admin, standin)
    response = import_post(admin, c.id, record_ids=["u000001", "u000002"], and_deploy="1")
    assert "2 user(s) imported, 2 of them deployed (e-mail queued)" in text_of(response)
    assert all(u.deployed_at is not None for u in all_users(app))
    with app.app_context():
        assert db.get_session().scalar(select(func.count()).select_from(OutboxMessage)) == 2
