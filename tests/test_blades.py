"""Blade discovery through the entry point group (R-SH2), refusals, menu and scheduled checks."""

from __future__ import annotations

import textwrap
import threading

import pytest
from helpers import login, submit
from sqlalchemy import select

from server_manager_stub import create_app, db, options
from server_manager_stub.events import Alarm
from server_manager_stub.scheduler import run_checks

EXTRA_BLADE = """
from flask import Blueprint
from server_manager_stub import options
from server_manager_stub.blades import Blade, MenuItem, ScheduledCheck

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")


@bp.get("/")
def index():
    return "Voicemail blade home"


@bp.post("/boom")
def boom():
    from server_manager_stub.db import session
    options.put(session, "voicemail.half_done", True)
    session.flush()
    raise RuntimeError("the blade broke halfway")


def count_run(s, now, app):
    options.put(s, "voicemail.runs", (options.get(s, "voicemail.runs") or 0) + 1)


class VoicemailBlade(Blade):
    def __init__(self):
        super().__init__(name="voicemail", title="Voicemail",
                         menu=[MenuItem("Mailboxes", "voicemail.index", group="Voicemail")])

    def blueprints(self):
        return [bp]

    def scheduled_checks(self):
        return [ScheduledCheck("count", count_run, every_seconds=3600)]


class NotABlade:
    pass


class ClashBlade(Blade):
    def __init__(self):
        super().__init__(name="client_deployment", title="Impostor")
"""


def install_blades(path, entry_points: dict[str, str]) -> None:
    """Install a distribution with the given blade entry points into `path` (on sys.path)."""
    (path / "extra_blade.py").write_text(EXTRA_BLADE)
    dist = path / "test_blades-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: test-blades\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[server_manager.blades]\n{lines}\n")


@pytest.fixture
def with_blades(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()

    def install(**entry_points):
        install_blades(site, entry_points)
        monkeypatch.syspath_prepend(str(site))

    yield install


def test_the_client_deployment_blade_is_in_the_navigation_with_its_four_tabs(admin):
    page = admin.get("/").text
    assert "Client Deployment" in page
    nav = page.split('<nav class="side"')[1].split("</nav>")[0]
    for tab, url in [
        ("Users", "/client-deployment/"),
        ("Deployment Profiles", "/client-deployment/profiles"),
        ("Configuration", "/client-deployment/configuration"),
        ("Diagnostics", "/client-deployment/diagnostics"),
    ]:
        assert f'<a href="{url}">{tab}</a>' in nav
        assert admin.get(url).status_code == 200


def test_a_second_installed_blade_is_discovered_and_a_broken_one_skipped(
    with_blades, config, make_admin
):
    with_blades(
        voicemail="extra_blade:VoicemailBlade",
        broken="no_such_module:Blade",
        notblade="extra_blade:NotABlade",
        impostor="extra_blade:ClashBlade",
    )
    app = create_app(config)
    names = [b.name for b in app.extensions["sm_blades"]]
    assert names == ["client_deployment", "voicemail"]
    make_admin("admin", primary=True)
    c = app.test_client()
    assert login(c, "admin").status_code == 303
    page = c.get("/").text
    assert "Voicemail" in page and "Mailboxes" in page and "Client Deployment" in page
    assert "Impostor" not in page
    assert c.get("/voicemail/").text == "Voicemail blade home"
    with app.app_context():
        alarms = {a.key: a for a in db.get_session().scalars(select(Alarm))}
    assert set(alarms) == {"shell.blade.broken", "shell.blade.notblade", "shell.blade.impostor"}
    assert "failed to import: ModuleNotFoundError" in alarms["shell.blade.broken"].message
    assert "is not a subclass of Blade" in alarms["shell.blade.notblade"].message
    assert "already taken" in alarms["shell.blade.impostor"].message
    assert all(a.severity == "major" for a in alarms.values())
    db.get_db(app).engine.dispose()


def test_a_request_that_fails_halfway_changes_nothing(with_blades, config, make_admin):
    with_blades(voicemail="extra_blade:VoicemailBlade")
    app = create_app(config)
    make_admin("admin", primary=True)
    c = app.test_client()
    login(c, "admin")
    response = submit(c, "/voicemail/boom", page="/")
    assert response.status_code == 500
    assert "could not complete this request and changed nothing" in response.text
    with app.app_context():
        assert options.get(db.get_session(), "voicemail.half_done") is None
    db.get_db(app).engine.dispose()


def test_sm_blades_limits_what_is_loaded_and_the_menu_follows(with_blades, config, make_admin):
    with_blades(voicemail="extra_blade:VoicemailBlade")
    app = create_app({**config, "SM_BLADES": "voicemail"})
    assert [b.name for b in app.extensions["sm_blades"]] == ["voicemail"]
    make_admin("admin", primary=True)
    c = app.test_client()
    login(c, "admin")
    page = c.get("/").text
    assert "Mailboxes" in page and "Client Deployment" not in page
    assert c.get("/client-deployment/").status_code == 404
    db.get_db(app).engine.dispose()


def test_a_blade_that_loads_again_has_its_alarm_cleared(with_blades, config):
    with_blades(voicemail="no_such_module:Blade")
    app = create_app(config)
    db.get_db(app).engine.dispose()
    app = create_app({**config, "SM_BLADES": "client_deployment"})
    with app.app_context():
        alarm = db.get_session().scalars(select(Alarm)).one()
        assert (alarm.key, alarm.severity) == ("shell.blade.voicemail", "cleared")
    db.get_db(app).engine.dispose()


def test_tick_runs_each_blade_check_once_even_from_two_nodes_at_once(with_blades, config):
    with_blades(voicemail="extra_blade:VoicemailBlade")
    app = create_app(config)
    outcomes = []
    barrier = threading.Barrier(2)

    def node():
        barrier.wait()
        outcomes.append(run_checks(app)["voicemail.count"])

    threads = [threading.Thread(target=node) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "skipped"]
    assert run_checks(app)["voicemail.count"] == "skipped"  # not due again within the hour
    config["SM_CLOCK"].advance(hours=1)
    assert run_checks(app)["voicemail.count"] == "ok"
    with app.app_context():
        assert options.get(db.get_session(), "voicemail.runs") == 2
    db.get_db(app).engine.dispose()


def test_a_failing_check_is_reported_and_the_others_still_run(with_blades, config, tmp_path):
    (tmp_path / "site").mkdir(exist_ok=True)
    with_blades(voicemail="extra_blade:VoicemailBlade", failing="failing_blade:FailingBlade")
    (tmp_path / "site" / "failing_blade.py").write_text(
        textwrap.dedent("""
        from server_manager_stub.blades import Blade, ScheduledCheck

        def explode(s, now, app):
            raise RuntimeError("the check broke")

        class FailingBlade(Blade):
            def __init__(self):
                super().__init__(name="failing", title="Failing")

            def scheduled_checks(self):
                return [ScheduledCheck("explode", explode)]
    """)
    )
    app = create_app(config)
    outcome = run_checks(app)
    assert outcome["failing.explode"] == "RuntimeError: the check broke"
    assert outcome["voicemail.count"] == "ok"
    assert run_checks(app)["failing.explode"].startswith("RuntimeError")  # lease was released
    db.get_db(app).engine.dispose()
