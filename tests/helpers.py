"""Helpers for tests: post a form the way a browser does, with its CSRF token."""

from __future__ import annotations

import os
import re

from cryptography.fernet import Fernet
from flask.testing import FlaskClient

PASSWORD = "correct horse battery staple"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith("postgresql")
TEST_KEY = Fernet.generate_key().decode()


def csrf_token(client: FlaskClient, url: str, **kwargs) -> str:
    """The CSRF token of the form on the page at `url`."""
    page = client.get(url, **kwargs)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text) or re.search(
        r'name="csrf_token" value="([^"]+)"', page.text
    )
    assert match, f"no CSRF token on {url} (status {page.status_code})"
    return match.group(1)


def submit(
    client: FlaskClient, url: str, data: dict | None = None, *, page: str | None = None, **kwargs
):
    """POST `data` to `url` with the CSRF token of the form on `page` (default: `url`)."""
    data = dict(data or {})
    base = {"base_url": kwargs["base_url"]} if "base_url" in kwargs else {}
    data["csrf_token"] = csrf_token(client, page or url, **base)
    return client.post(url, data=data, **kwargs)


def login(client: FlaskClient, username: str, password: str = PASSWORD):
    """Log in through the login form."""
    return submit(client, "/login", {"username": username, "password": password})
