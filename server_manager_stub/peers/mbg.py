"""A stand-in for an MBG's web service (docs/mbg-protocol.md), served over HTTPS on loopback.

It keeps its own small store: teleworker user records (generated), request tokens waiting for
approval and access credentials. Its administrator approves requests on its own page, guarded
by its own password. Tests run it in-process; `server-manager peer mbg` runs it alone.
"""

from __future__ import annotations

import hmac
import json
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request, session
from markupsafe import escape
from werkzeug.serving import make_server

from . import free_port
from .tls import ServerCertificate, ensure_certificate

ACCESS_DAYS = 365
REQUEST_MINUTES = 60
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kim",
    "Lena",
    "Malik",
    "Nora",
    "Oscar",
    "Paula",
    "Quentin",
    "Rosa",
    "Samir",
    "Tara",
]
LAST = [
    "Adams",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nguyen",
    "O'Brien",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
]


@dataclass
class UserRecord:
    """A teleworker account as the MBG holds it."""

    id: str
    first_name: str
    last_name: str
    directory_number: str
    email: str
    sip_username: str
    sip_password: str


@dataclass
class Grant:
    """An authorisation request and, once exchanged, its access credential."""

    token_id: str
    request_secret: str
    consumer: str
    callback: str | None
    created_at: str
    verifier: str | None = None
    approved: bool = False
    access_token: str | None = None
    access_expires_at: str | None = None
    revoked: bool = False


@dataclass
class Store:
    """Everything the stand-in knows; saved as JSON when it has a data folder."""

    users: list[UserRecord] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)


def generate_users(count: int, seed: int = 7) -> list[UserRecord]:
    """`count` plausible teleworker records with stable ids."""
    rnd = random.Random(seed)
    users = []
    for i in range(count):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        dn = str(4000 + i)
        users.append(
            UserRecord(
                id=f"u{i + 1:06d}",
                first_name=first,
                last_name=last,
                directory_number=dn,
                email=f"{first.lower()}.{last.lower().replace(chr(39), '')}{i}@example.com",
                sip_username=f"tw{dn}",
                sip_password="".join(rnd.choices("abcdefghjkmnpqrstuvwxyz23456789", k=12)),
            )
        )
    return users


class MbgStandIn:
    """The stand-in MBG. `start()` serves HTTPS on 127.0.0.1 (and the approval page over HTTP
    on `ui_port` when given, so a browser needs no certificate exception)."""

    def __init__(
        self,
        *,
        users: int = 50,
        admin_password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ui_port: int | None = None,
        data_dir: Path | None = None,
        certificate: ServerCertificate | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.ui_port = ui_port
        self.data_dir = Path(data_dir) if data_dir else None
        self.admin_password = admin_password or self._stored_password()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.Lock()
        self.store = self._load() or Store(users=generate_users(users))
        folder = self.data_dir or Path(_tempdir())
        self.certificate = certificate or ensure_certificate(folder / "tls", [host, "localhost"])
        self.app = self._make_app()
        self._servers: list[Any] = []

    def _stored_password(self) -> str:
        """A generated approval-page password, kept in the data folder across restarts."""
        password = secrets.token_urlsafe(9)
        if not self.data_dir:
            return password
        path = self.data_dir / "admin_password"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password

    # --- state --------------------------------------------------------------------------

    def _load(self) -> Store | None:
        if not self.data_dir or not (self.data_dir / "store.json").exists():
            return None
        raw = json.loads((self.data_dir / "store.json").read_text())
        return Store(
            users=[UserRecord(**u) for u in raw["users"]],
            grants={k: Grant(**g) for k, g in raw["grants"].items()},
        )

    def _save(self) -> None:
        if not self.data_dir:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.data_dir / "store.json.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "users": [asdict(u) for u in self.store.users],
                    "grants": {k: asdict(g) for k, g in self.store.grants.items()},
                }
            )
        )
        tmp.replace(self.data_dir / "store.json")

    @property
    def url(self) -> str:
        """Base URL of the web service."""
        return f"https://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        """What an administrator types as the connection's Host."""
        return f"{self.host}:{self.port}"

    def revoke_all(self) -> None:
        """Revoke every access credential (as an MBG administrator would)."""
        with self.lock:
            for grant in self.store.grants.values():
                grant.revoked = True
            self._save()

    def approve(self, token_id: str) -> str:
        """Approve a request as the MBG administrator; return the verifier."""
        with self.lock:
            grant = self.store.grants[token_id]
            grant.approved = True
            grant.verifier = grant.verifier or secrets.token_hex(4).upper()
            self._save()
            return grant.verifier

    def update_user(self, record_id: str, **changes: Any) -> None:
        """Change a user record."""
        with self.lock:
            for user in self.store.users:
                if user.id == record_id:
                    for key, value in changes.items():
                        setattr(user, key, value)
            self._save()

    def delete_user(self, record_id: str) -> None:
        """Remove a user record."""
        with self.lock:
            self.store.users = [u for u in self.store.users if u.id != record_id]
            self._save()

    # --- the web service -----------------------------------------------------------------

    def _grant_for_bearer(self) -> Grant:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        for grant in self.store.grants.values():
            if grant.access_token and hmac.compare_digest(grant.access_token, token):
                expired = datetime.fromisoformat(grant.access_expires_at) <= self.clock()
                if grant.revoked or expired:
                    break
                return grant
        abort(401)

    def _make_app(self) -> Flask:
        app = Flask("mbg-stand-in")
        app.secret_key = secrets.token_bytes(16)
        standin = self

        @app.errorhandler(401)
        def _unauthorized(_e):
            return jsonify(
                error="unauthorized", message="Missing, expired or revoked access credential."
            ), 401

        @app.errorhandler(404)
        def _not_found(_e):
            return jsonify(error="not_found"), 404

        @app.post("/api/v1/auth/request")
        def auth_request():
            body = request.get_json(silent=True) or {}
            consumer = str(body.get("consumer") or "")[:100]
            if not consumer:
                return jsonify(error="bad_request", message="consumer is required"), 400
            callback = body.get("callback") or None
            grant = Grant(
                token_id=secrets.token_hex(8),
                request_secret=secrets.token_urlsafe(24),
                consumer=consumer,
                callback=callback,
                created_at=standin.clock().isoformat(),
            )
            with standin.lock:
                standin.store.grants[grant.token_id] = grant
                standin._save()
            base = f"http://{standin.host}:{standin.ui_port}" if standin.ui_port else standin.url
            return jsonify(
                token_id=grant.token_id,
                request_secret=grant.request_secret,
                authorize_url=f"{base}/authorize?{urlencode({'token_id': grant.token_id})}",
                expires_in=REQUEST_MINUTES * 60,
            ), 201

        @app.post("/api/v1/auth/access")
        def auth_access():
            body = request.get_json(silent=True) or {}
            grant = standin.store.grants.get(str(body.get("token_id", "")))
            if grant is None or not hmac.compare_digest(
                grant.request_secret, str(body.get("request_secret", ""))
            ):
                return jsonify(error="unknown_token", message="No such authorization request."), 400
            if not grant.approved:
                return jsonify(
                    error="not_approved",
                    message="The MBG administrator has not approved this request.",
                ), 400
            if grant.access_token:
                return jsonify(error="used", message="This request was already exchanged."), 400
            if not hmac.compare_digest(
                grant.verifier or "", str(body.get("verifier", "")).strip().upper()
            ):
                return jsonify(error="invalid_verifier", message="The verifier is not right."), 400
            with standin.lock:
                grant.access_token = secrets.token_urlsafe(32)
                grant.access_expires_at = (
                    standin.clock() + timedelta(days=ACCESS_DAYS)
                ).isoformat()
                standin._save()
            return jsonify(access_token=grant.access_token, expires_at=grant.access_expires_at)

        @app.get("/api/v1/users")
        def users():
            standin._grant_for_bearer()
            try:
                page = max(1, int(request.args.get("page", 1)))
                per_page = min(500, max(1, int(request.args.get("per_page", 100))))
            except ValueError:
                return jsonify(error="bad_request", message="page and per_page are numbers"), 400
            records = sorted(standin.store.users, key=lambda u: u.id)
            chunk = records[(page - 1) * per_page : page * per_page]
            return jsonify(
                users=[asdict(u) for u in chunk], page=page, per_page=per_page, total=len(records)
            )

        @app.get("/api/v1/users/<record_id>")
        def user(record_id: str):
            standin._grant_for_bearer()
            for u in standin.store.users:
                if u.id == record_id:
                    return jsonify(asdict(u))
            abort(404)

        # --- the MBG administrator's approval page (HTML) ---

        def page(body: str) -> str:
            return (
                "<!doctype html><html><head><meta charset='utf-8'><title>MBG Web Services"
                "</title></head><body style='font-family:sans-serif;max-width:40rem;margin:2rem'>"
                f"<h1>MBG Web Services</h1>{body}</body></html>"
            )

        def login_form(next_url: str) -> str:
            wrong = "<p style='color:#b00'>Wrong password.</p>" if request.method == "POST" else ""
            return page(
                f"{wrong}<form method='post' action='/login'><input type='hidden' "
                f"name='next' value='{escape(next_url)}'><label>MBG administrator "
                "password <input type='password' name='password' autofocus></label> "
                "<button>Log in</button></form>"
            )

        @app.post("/login")
        def login():
            next_url = request.form.get("next", "/webservices")
            if not next_url.startswith("/") or next_url.startswith("//"):
                next_url = "/webservices"
            if hmac.compare_digest(request.form.get("password", ""), standin.admin_password):
                session["admin"] = True
                return redirect(next_url, 303)
            return login_form(next_url), 403

        @app.route("/webservices", methods=["GET", "POST"])
        def webservices():
            """The MBG's Web Services page: pending requests, approve one, copy its verifier."""
            if not session.get("admin"):
                return login_form("/webservices")
            if request.method == "POST":
                grant = standin.store.grants.get(request.form.get("token_id", ""))
                if grant is None:
                    return page("<p>Unknown request.</p>"), 404
                verifier = standin.approve(grant.token_id)
                return page(
                    f"<p>Approved the request {escape(grant.token_id)} of "
                    f"{escape(grant.consumer)}. Verifier:</p><p><code id='verifier' "
                    f"style='font-size:2rem'>{escape(verifier)}</code></p>"
                )
            rows = "".join(
                f"<li>{escape(g.token_id)} from {escape(g.consumer)} "
                f"<form method='post' style='display:inline'><input type='hidden' name='token_id' "
                f"value='{escape(g.token_id)}'><button>Approve</button></form></li>"
                for g in standin.store.grants.values()
                if not g.approved
            )
            return page(
                f"<h2>Pending authorization requests</h2><ul>{rows or '<li>none</li>'}</ul>"
            )

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            grant = standin.store.grants.get(request.values.get("token_id", ""))
            if grant is None:
                return page("<p>Unknown authorization request.</p>"), 404
            token = escape(grant.token_id)
            if not session.get("admin"):
                return login_form(f"/authorize?{urlencode({'token_id': grant.token_id})}")
            if request.method == "POST" and request.form.get("decision") == "approve":
                verifier = standin.approve(grant.token_id)
                if grant.callback:
                    sep = "&" if "?" in grant.callback else "?"
                    return redirect(
                        grant.callback
                        + sep
                        + urlencode({"token_id": grant.token_id, "verifier": verifier}),
                        303,
                    )
                return page(
                    f"<p>Access approved. Copy this verifier into the Client Deployment "
                    f"connection:</p><p><code id='verifier' style='font-size:2rem'>"
                    f"{escape(verifier)}</code></p>"
                )
            if request.method == "POST":
                return page("<p>Access denied. You can close this window.</p>")
            return page(
                f"<p><strong>{escape(grant.consumer)}</strong> asks to read the "
                "teleworker accounts of this MBG.</p><form method='post'>"
                f"<input type='hidden' name='token_id' value='{token}'>"
                "<button name='decision' value='approve'>Approve</button> "
                "<button name='decision' value='deny'>Deny</button></form>"
            )

        return app

    # --- serving ------------------------------------------------------------------------

    def start(self) -> MbgStandIn:
        """Serve in background threads."""
        servers = [
            make_server(
                self.host,
                self.port,
                self.app,
                threaded=True,
                ssl_context=self.certificate.server_context(),
            )
        ]
        if self.ui_port:
            servers.append(make_server(self.host, self.ui_port, self.app, threaded=True))
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers = servers
        return self

    def stop(self) -> None:
        """Stop serving."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []


def _tempdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="mbg-stand-in-")
