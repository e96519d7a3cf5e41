"""A stand-in for the MiCollab mobile client: follows a deployment link (or an auth token) the
way the app does, answers the PIN prompt, keeps the configuration, polls for forced ones.

The protocol is docs/client-api.md. Standard library only, like a small app would be."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API = "/client-deployment/api/v1"


class ClientError(Exception):
    """The server refused; `code` is the API's error code (not_available, pin_incorrect, …)."""

    def __init__(self, status: int, code: str, message: str, data: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.data = status, code, message, data or {}


@dataclass
class MobileClient:
    """One installed client. `config` is what it last downloaded."""

    cafile: str | None = None
    insecure: bool = False
    user_agent: str = "MiCollab-stand-in/1.0 (Android 14)"
    config: dict[str, Any] | None = None
    history: list[str] = field(default_factory=list)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile)
        if self.insecure:  # a lab server with a self-signed certificate
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _call(
        self, method: str, url: str, body: dict | None = None, credential: str | None = None
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        if urlsplit(url).scheme not in ("https", "http"):
            raise ClientError(0, "bad_link", f"Not a web address: {url}")
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=15, context=self._context()) as r:  # noqa: S310
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read())
            except ValueError:
                payload = {}
            raise ClientError(
                e.code, payload.get("error", "http_error"), payload.get("message", str(e)), payload
            ) from None

    def open_link(
        self, link: str, pin: str | None = None, ask_pin: Callable[[str], str | None] | None = None
    ) -> dict[str, Any]:
        """Redeem a deployment link (as when the user taps it on the phone)."""
        parts = urlsplit(link)
        token = parts.path.rstrip("/").rsplit("/", 1)[-1]
        base = f"{parts.scheme}://{parts.netloc}"
        return self._redeem(base, {"link_token": token}, pin, ask_pin)

    def enter_auth_token(
        self,
        server: str,
        auth_token: str,
        pin: str | None = None,
        ask_pin: Callable[[str], str | None] | None = None,
    ) -> dict[str, Any]:
        """Redeem an auth token typed into the app (the server is known to the app)."""
        return self._redeem(server.rstrip("/"), {"auth_token": auth_token}, pin, ask_pin)

    def _redeem(
        self, base: str, body: dict, pin: str | None, ask_pin: Callable[[str], str | None] | None
    ) -> dict[str, Any]:
        url = f"{base}{API}/redeem"
        while True:
            try:
                self.config = self._call("POST", url, {**body, **({"pin": pin} if pin else {})})
                self.history.append("downloaded")
                return self.config
            except ClientError as exc:
                self.history.append(exc.code)
                if exc.code in ("pin_required", "pin_incorrect") and ask_pin is not None:
                    pin = ask_pin(exc.message)
                    if pin:
                        continue
                raise

    def poll(self) -> bool:
        """Ask whether a forced configuration waits; if so, fetch it. True if one was fetched."""
        if not self.config:
            raise ClientError(0, "not_deployed", "The client has no configuration yet.")
        client = self.config["client"]
        status = self._call("GET", client["status_url"], credential=client["credential"])
        if not status.get("force_config"):
            return False
        self.config = self._call(
            "POST", client["config_url"], body={}, credential=client["credential"]
        )
        self.history.append("forced")
        return True

    def save(self, path: Path) -> None:
        """Keep the configuration in a file (mode 0600: it holds passwords)."""
        path.write_text(json.dumps(self.config, indent=2))
        path.chmod(0o600)
