"""R-G2: no input yields a server error page. Every POST endpoint of the app (found by walking
its URL map, so new ones are covered) gets arbitrary form data, and every GET page arbitrary
query arguments, as the primary administrator; the answer is never a 5xx."""

from __future__ import annotations

import re

import pytest
from factories import make_users
from helpers import csrf_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Endpoints that legitimately talk to the outside world or stream files are still posted to:
# they must answer with a message, not an error page. Only these are left out:
SKIPPED = {"static", "client_deployment.static", "auth.logout"}

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=40,
)
FIELD_NAMES = [
    "name",
    "q",
    "action",
    "ids",
    "select_all",
    "excluded",
    "confirmed",
    "profile_id",
    "last_name",
    "email",
    "deployment_pin",
    "verifier",
    "host",
    "subject",
    "body",
    "recipient",
    "min_severity",
    "username",
    "password",
    "record_ids",
    "connection",
    "profile",
    "partial",
    "overwrite",
    "use_teleworker",
    "pbx_video_tx",
    "page",
    "size",
    "sort",
    "desc",
    "severity",
    "source",
    "status",
    "pin",
    "copy_from",
    "load_default",
    "preview",
    "and_deploy",
]
# Numbers that str.isdigit() accepts but int() refuses, ids past any integer column, and junk.
tricky = st.sampled_from(["1", "²", "٣", "99999999999999999999", "-1", "0", "1e3", " 7 "])
forms = st.dictionaries(st.sampled_from(FIELD_NAMES), st.one_of(text, tricky), max_size=8)


def _urls(app, method):
    from flask import url_for
    from werkzeug.routing.converters import NumberConverter

    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or method not in rule.methods:
            continue
        values = {
            arg: 1 if isinstance(conv, NumberConverter) else "x"
            for arg, conv in rule._converters.items()
        }
        with app.test_request_context():
            found.append(url_for(rule.endpoint, **values))
    return found


@pytest.fixture
def world(app, admin):
    """One of everything the pages refer to by id 1."""
    make_users(app, 3)
    return admin


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_post_gives_a_server_error(app, world, data):
    token = csrf_token(world, "/")
    for url in _urls(app, "POST"):
        form = data.draw(forms, label=url)
        response = world.post(url, data={**form, "csrf_token": token})
        assert response.status_code < 500, (url, form, response.status_code)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_get_gives_a_server_error(app, world, data):
    for url in _urls(app, "GET"):
        args = data.draw(forms, label=url)
        response = world.get(url, query_string=args)
        assert response.status_code < 500, (url, args, response.status_code)
        response.close()


def test_the_walk_covers_the_blade(app):
    posts = _urls(app, "POST")
    assert any(re.search(r"/client-deployment/users/action$", u) for u in posts)
    assert any(u.endswith("/client-deployment/api/v1/redeem") for u in posts)


@pytest.mark.parametrize(
    "path",
    [
        "/client-deployment/users/99999999999999999999",
        "/client-deployment/profiles/99999999999",
        "/client-deployment/configuration/mbg/99999999999",
        "/events/99999999999",
        "/client-deployment/profiles/new?copy=99999999999999999999",
        "/client-deployment/profiles/new?copy=%C2%B2",
        "/client-deployment/?page=%C2%B2",
    ],
)
def test_huge_or_exotic_numbers_in_urls_are_not_errors(world, path):
    assert world.get(path).status_code in (200, 404)
