"""Alarms (R-SH3): one row per key, history on change, the event viewer and e-mail alerts."""

from __future__ import annotations

import pytest
from helpers import submit
from sqlalchemy import select

from server_manager_stub import db
from server_manager_stub.events import Alarm, AlarmEvent, clear_alarm, raise_alarm
from server_manager_stub.outbox import OutboxMessage


def _raise(app, *args, **kwargs):
    with app.app_context(), db.get_db(app).transaction() as s:
        raise_alarm(*args, session=s, **kwargs)


def _clear(app, key, message=None):
    with app.app_context(), db.get_db(app).transaction() as s:
        return clear_alarm(key, message, session=s)


def _alarms(app):
    with app.app_context():
        s = db.get_session()
        return [(a.key, a.severity, a.message, len(a.history)) for a in s.scalars(select(Alarm))]


def test_raising_the_same_key_twice_keeps_one_row_with_the_newer_severity(app, clock):
    _raise(app, "mbg.expiry.1", "warning", "MBG", "expires in 28 days")
    clock.advance(days=14)
    _raise(app, "mbg.expiry.1", "minor", "MBG", "expires in 14 days")
    assert _alarms(app) == [("mbg.expiry.1", "minor", "expires in 14 days", 2)]
    with app.app_context():
        alarm = db.get_session().scalars(select(Alarm)).one()
        assert alarm.last_raised_at > alarm.first_raised_at


def test_raising_again_unchanged_adds_no_history(app):
    _raise(app, "k", "major", "Src", "same")
    _raise(app, "k", "major", "Src", "same")
    assert _alarms(app) == [("k", "major", "same", 1)]


def test_clearing_keeps_the_alarm_and_its_history(app):
    _raise(app, "k", "major", "Src", "broken")
    assert _clear(app, "k", "fixed") is True
    assert _clear(app, "k") is False  # already cleared: nothing happens
    assert _alarms(app) == [("k", "cleared", "fixed", 2)]
    _raise(app, "k", "minor", "Src", "broken again")
    assert _alarms(app) == [("k", "minor", "broken again", 3)]
    with app.app_context():
        severities = [
            e.severity for e in db.get_session().scalars(select(AlarmEvent).order_by(AlarmEvent.id))
        ]
    assert severities == ["major", "cleared", "minor"]


def test_unknown_severity_is_a_programming_error(app):
    with pytest.raises(ValueError, match="unknown alarm severity"):
        _raise(app, "k", "disaster", "Src", "x")


def test_event_viewer_shows_severity_colours_newest_first(app, admin, clock):
    _raise(app, "a", "warning", "MBG", "first alarm")
    clock.advance(minutes=1)
    _raise(app, "b", "major", "Certificates", "second alarm")
    clock.advance(minutes=1)
    _raise(app, "c", "minor", "MBG", "third alarm")
    page = admin.get("/events/").text
    assert page.index("third alarm") < page.index("second alarm") < page.index("first alarm")
    assert 'class="sev major"' in page and 'class="sev minor"' in page
    assert 'class="sev warning"' in page


def test_event_viewer_filters_by_severity_and_source(app, admin):
    _raise(app, "a", "warning", "MBG", "mbg warning")
    _raise(app, "b", "major", "Certificates", "cert major")
    _raise(app, "c", "major", "MBG", "mbg major")
    _clear(app, "c")
    page = admin.get("/events/?severity=major").text
    assert "cert major" in page and "mbg warning" not in page and "mbg major" not in page
    page = admin.get("/events/?severity=all&source=MBG").text
    assert "mbg warning" in page and "mbg major" in page and "cert major" not in page
    page = admin.get("/events/").text  # default: active alarms only
    assert "mbg major" not in page and "mbg warning" in page
    page = admin.get("/events/?severity=cleared").text
    assert "mbg major" in page and "cert major" not in page


def test_event_viewer_pages_through_many_alarms(app, admin, clock):
    for i in range(30):
        clock.advance(seconds=1)
        _raise(app, f"k{i:02}", "warning", "Src", f"alarm number {i:02}")
    first = admin.get("/events/").text
    assert "alarm number 29" in first and "alarm number 04" not in first
    assert "1–25 of 30" in first
    second = admin.get("/events/?page=2").text
    assert "alarm number 04" in second and "alarm number 05" not in second
    assert "alarm number 00" in admin.get("/events/?page=99").text  # past the end: last page


def test_acknowledge_records_who_and_a_worse_state_asks_again(app, admin):
    _raise(app, "k", "minor", "Src", "look at me")
    with app.app_context():
        alarm_id = db.get_session().scalars(select(Alarm.id)).one()
    response = submit(admin, f"/events/{alarm_id}/acknowledge", page="/events/")
    assert response.status_code == 303
    with app.app_context():
        alarm = db.get_session().get(Alarm, alarm_id)
        assert alarm.acknowledged_by == "admin"
    _raise(app, "k", "major", "Src", "worse now")
    with app.app_context():
        assert db.get_session().get(Alarm, alarm_id).acknowledged_at is None


def test_alarm_detail_shows_history(app, admin):
    _raise(app, "k", "minor", "Src", "step one")
    _raise(app, "k", "major", "Src", "step two")
    with app.app_context():
        alarm_id = db.get_session().scalars(select(Alarm.id)).one()
    page = admin.get(f"/events/{alarm_id}").text
    assert "step one" in page and "step two" in page
    assert admin.get("/events/999").status_code == 404


def test_alarm_emails_go_to_the_outbox_from_the_chosen_severity(app, admin):
    response = submit(
        admin, "/events/alerts", {"recipient": "noc@example.com", "min_severity": "major"}
    )
    assert response.status_code == 303
    _raise(app, "low", "minor", "Src", "only minor")
    _raise(app, "high", "major", "Src", "this is major")
    _raise(app, "high", "major", "Src", "this is major")  # unchanged: no second mail
    _raise(app, "high", "critical", "Src", "now critical")
    with app.app_context():
        mails = db.get_session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.subject for m in mails] == [
            "[MAJOR] Src: this is major",
            "[CRITICAL] Src: now critical",
        ]
        assert mails[0].recipient_list == ["noc@example.com"]
        assert "Severity: major" in mails[0].text_body


@pytest.mark.parametrize(
    ("recipient", "severity", "message"),
    [
        ("not-an-address", "major", "This is not a valid e-mail address"),
        ("noc@example.com", "fatal", "Not a valid choice"),
    ],
)
def test_alert_settings_refuse_bad_values(app, admin, recipient, severity, message):
    response = submit(admin, "/events/alerts", {"recipient": recipient, "min_severity": severity})
    assert response.status_code == 422 and message in response.text
    _raise(app, "k", "critical", "Src", "x")
    with app.app_context():
        assert db.get_session().scalars(select(OutboxMessage)).all() == []
