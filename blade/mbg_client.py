"""The MBG web-service client: every call with connect and read timeouts, TLS verified, and
failures turned into messages an administrator understands (docs/mbg-protocol.md)."""

from __future__ import annotations

import errno
import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

API = "/api/v1"


class MbgError(Exception):
    """A call to an MBG failed; str() is the message for the administrator."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class MbgSettings:
    """How to reach MBGs: timeouts in seconds and an optional CA bundle for private CAs."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    ca_bundle: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MbgSettings:
        """Settings from the app config (MBG_TIMEOUT, MBG_CA_BUNDLE)."""
        timeout = float(config.get("MBG_TIMEOUT", 15))
        return cls(
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            ca_bundle=config.get("MBG_CA_BUNDLE") or None,
        )


@dataclass(frozen=True)
class AuthRequest:
    """The MBG's answer to an authorisation request."""

    token_id: str
    request_secret: str
    authorize_url: str


@dataclass(frozen=True)
class AccessGrant:
    """An access credential and when it expires."""

    access_token: str
    expires_at: datetime


def split_host(host: str) -> tuple[str, int]:
    """'mbg.example.com:8443' -> ('mbg.example.com', 8443); the port defaults to 443."""
    host = host.strip()
    if host.startswith("["):  # [IPv6]:port
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else 443
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, int(port)
    return host, 443


class MbgClient:
    """Talks to one MBG."""

    def __init__(self, host: str, settings: MbgSettings) -> None:
        self.host, self.port = split_host(host)
        self.settings = settings
        self.context = ssl.create_default_context()
        if settings.ca_bundle:
            try:
                self.context.load_verify_locations(cafile=settings.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise MbgError(
                    f"The CA bundle MBG_CA_BUNDLE={settings.ca_bundle} cannot be "
                    f"read ({exc}); fix the setting and restart."
                ) from None

    @property
    def where(self) -> str:
        """host:port for messages."""
        return f"{self.host}:{self.port}"

    def _call(
        self, method: str, path: str, body: dict | None = None, token: str | None = None
    ) -> Any:
        headers = {"Accept": "application/json", "User-Agent": "client-deployment-blade"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=self.settings.connect_timeout
        )
        try:
            conn.connect()
            conn.sock.settimeout(self.settings.read_timeout)
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read(10 * 1024 * 1024)
            status = response.status
        except Exception as exc:
            raise self._explain(exc) from None
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if status == 401:
            raise MbgError(
                f"The MBG at {self.where} refused the connection's credential: the "
                "authorization was revoked on the MBG or has expired. Click "
                "Authenticate to authorize the connection again.",
                status=401,
            )
        if status >= 400:
            detail = data.get("message") if isinstance(data, dict) else None
            code = data.get("error") if isinstance(data, dict) else None
            raise MbgError(
                f"The MBG at {self.where} answered {status}"
                + (f": {detail}" if detail else ".")
                + (" Is its Web Service activated?" if status == 404 else ""),
                status=status,
                code=code,
            )
        if not isinstance(data, dict):
            raise MbgError(
                f"The answer of {self.where} is not the MBG web service's JSON: is "
                "this the right host and port?"
            )
        return data

    def _explain(self, exc: BaseException) -> MbgError:
        where = self.where
        if isinstance(exc, socket.gaierror):
            if exc.errno == socket.EAI_AGAIN:
                return MbgError(
                    f"The name {self.host} could not be looked up just now (temporary "
                    "DNS failure). Try again in a moment."
                )
            return MbgError(f"The name {self.host} is not known (DNS). Check the host name.")
        if isinstance(exc, ssl.SSLCertVerificationError):
            if "match" in (exc.verify_message or "") or "mismatch" in str(exc):
                return MbgError(
                    f"The certificate of {where} is not for the name {self.host} "
                    f"({exc.verify_message}). Use the name the certificate was "
                    "issued for."
                )
            return MbgError(
                f"The certificate of {where} is not trusted "
                f"({exc.verify_message}). Install a certificate from a public CA on "
                "the MBG, or add its CA to MBG_CA_BUNDLE."
            )
        if isinstance(exc, ssl.SSLError):
            return MbgError(
                f"The TLS connection to {where} failed ({exc.reason or exc}). Is "
                "this the MBG's HTTPS port?"
            )
        if isinstance(exc, ConnectionRefusedError):
            return MbgError(
                f"{where} refused the connection: nothing listens on port "
                f"{self.port}. Check the host and port, and that the MBG is running."
            )
        if isinstance(exc, TimeoutError | socket.timeout):
            return MbgError(
                f"{where} did not answer within {self.settings.read_timeout:g} "
                "seconds (a firewall may drop the traffic, or the MBG is busy)."
            )
        if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return MbgError(f"There is no route to {where} (network unreachable).")
        if isinstance(exc, http.client.HTTPException | ConnectionError):
            return MbgError(
                f"{where} closed the connection without a proper answer ({type(exc).__name__})."
            )
        return MbgError(f"Could not talk to {where}: {type(exc).__name__}: {exc}")

    # --- the protocol --------------------------------------------------------------------

    def request_authorization(self, consumer: str, callback: str | None) -> AuthRequest:
        """Ask for a request token; the MBG administrator then approves it."""
        data = self._call(
            "POST", f"{API}/auth/request", {"consumer": consumer, "callback": callback}
        )
        try:
            return AuthRequest(
                str(data["token_id"]), str(data["request_secret"]), str(data["authorize_url"])
            )
        except KeyError as exc:
            raise MbgError(f"The MBG's answer lacks {exc}.") from None

    def exchange(self, token_id: str, request_secret: str, verifier: str) -> AccessGrant:
        """Trade an approved request token and its verifier for an access credential."""
        try:
            data = self._call(
                "POST",
                f"{API}/auth/access",
                {"token_id": token_id, "request_secret": request_secret, "verifier": verifier},
            )
        except MbgError as exc:
            messages = {
                "invalid_verifier": "The MBG refused the verifier: check that you copied it "
                "whole from the MBG's Web Services page.",
                "not_approved": "The MBG administrator has not approved this request yet: "
                "approve it on the MBG, then enter the verifier.",
                "unknown_token": "The MBG does not know this request (it may have expired): "
                "click Authenticate to start again.",
                "used": "This request was already used: click Authenticate to start again.",
            }
            if exc.code in messages:
                raise MbgError(messages[exc.code], status=exc.status, code=exc.code) from None
            raise
        try:
            return AccessGrant(
                str(data["access_token"]), datetime.fromisoformat(str(data["expires_at"]))
            )
        except (KeyError, ValueError):
            raise MbgError("The MBG's answer has no valid access credential.") from None

    def user_page(self, token: str, page: int, per_page: int = 200) -> dict[str, Any]:
        """One page of user records."""
        return self._call(
            "GET", f"{API}/users?{urlencode({'page': page, 'per_page': per_page})}", token=token
        )

    def iter_users(self, token: str, per_page: int = 200) -> Iterator[dict[str, Any]]:
        """Every user record, page after page."""
        page = 1
        while True:
            data = self.user_page(token, page, per_page)
            users = data.get("users") or []
            yield from users
            if not users or page * per_page >= int(data.get("total", 0)):
                return
            page += 1

    def user(self, token: str, record_id: str) -> dict[str, Any] | None:
        """One user record by id, or None if the MBG no longer has it."""
        try:
            return self._call("GET", f"{API}/users/{quote(record_id, safe='')}", token=token)
        except MbgError as exc:
            if exc.status == 404:
                return None
            raise
