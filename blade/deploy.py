"""Deploying users (R-DEP1-R-DEP7): links and auth tokens, redeeming them, PINs, forced
configuration, expiry. Only hashes of the secrets are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from server_manager_stub import clock
from server_manager_stub.events import active_alarm_keys, clear_alarm, raise_alarm
from server_manager_stub.outbox import enqueue_rendered_later

from . import mail
from .models import Deployment, DeploymentUser, DownloadLog, Profile
from .sources import Outcome

U = DeploymentUser
# Crockford's base32 without I, L, O, U: easy to read aloud and to type on a phone.
TOKEN_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # noqa: S105 - an alphabet
ALARM_SOURCE = "Client Deployment"


def digest(secret: str) -> str:
    """How a secret is stored: its SHA-256 (the tokens are long random values, no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_auth_token() -> str:
    """A short, typeable token: 10 characters in two groups (50 random bits), e.g. 7KQ2M-X9D4T."""
    # One read of the OS's random source; 256 is a multiple of 32, so `b & 31` has no bias.
    raw = "".join(TOKEN_ALPHABET[b & 31] for b in secrets.token_bytes(10))
    return f"{raw[:5]}-{raw[5:]}"


def normal_auth_token(typed: str) -> str:
    """What a person typed, as issued: upper case, O→0, I/L→1, one dash."""
    raw = "".join(ch for ch in typed.upper() if ch.isalnum())
    raw = raw.translate(str.maketrans("OIL", "011"))
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw


@dataclass(frozen=True)
class LinkSettings:
    """How links are built: scheme and port of the public address, limits of a deployment."""

    server_fqdn: str
    scheme: str = "https"
    port: int = 0
    downloads: int = 3
    days: int = 42
    pin_tries: int = 5

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LinkSettings:
        """Settings from the app config."""
        return cls(
            config["SERVER_FQDN"],
            config.get("DEPLOY_LINK_SCHEME", "https"),
            int(config.get("DEPLOY_LINK_PORT", 0) or 0),
            int(config.get("DEPLOY_DOWNLOADS", 3)),
            int(config.get("DEPLOY_DAYS", 42)),
            int(config.get("DEPLOY_PIN_TRIES", 5)),
        )

    def base(self, profile: Profile) -> str:
        """https://<config download host>[:port] for a profile."""
        host = (
            profile.config_download_host_custom
            if (profile.config_download_host == "custom" and profile.config_download_host_custom)
            else self.server_fqdn
        )
        default = {"https": 443, "http": 80}.get(self.scheme)
        port = f":{self.port}" if self.port and self.port != default else ""
        return f"{self.scheme}://{host}{port}"


def link_for(settings: LinkSettings, profile: Profile, token: str) -> str:
    """The deployment link of a token."""
    return f"{settings.base(profile)}/client-deployment/d/{token}"


def recipient(user: DeploymentUser, profile: Profile) -> str | None:
    """Who gets the e-mail: the profile's address when it overrides, or for users without one."""
    if profile.override_user_email or not user.email:
        return profile.deployment_email or None
    return user.email


def deploy_users(
    s: Session,
    users: list[DeploymentUser],
    config: dict[str, Any],
    outcome: Outcome | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Deploy each user: a fresh deployment (earlier links stop working), the e-mail queued in
    the outbox (the worker composes it), Deployed set. Writes in bulk."""
    outcome = outcome or Outcome()
    now = now or clock.now()
    settings = LinkSettings.from_config(config)
    profiles = {p.id: p for p in s.scalars(select(Profile))}
    template = mail.current(s)
    deployments, messages, deployed = [], [], []
    for user in users:
        profile = profiles[user.profile_id]
        to = recipient(user, profile)
        if to is None:
            outcome.fail(
                _who(user),
                "no e-mail address, and its profile "
                f"{profile.name!r} has no deployment e-mail address",
            )
            continue
        link_token = secrets.token_urlsafe(32)
        auth_token = new_auth_token()
        link = link_for(settings, profile, link_token)
        deployments.append(
            {
                "user_id": user.id,
                "link_token_hash": digest(link_token),
                "auth_token_hash": digest(normal_auth_token(auth_token)),
                "created_at": now,
                "expires_at": now + timedelta(days=settings.days),
                "downloads_left": settings.downloads,
                "pin_failures": 0,
                "locked_at": None,
            }
        )
        messages.append(
            {
                "to": [to],
                "subject": f"Deployment of {user.first_name} {user.last_name}".replace("  ", " "),
                "args": mail.render_args(
                    template,
                    first_name=user.first_name,
                    last_name=user.last_name,
                    dn=user.directory_number,
                    link=link,
                    auth_token=auth_token,
                ),
            }
        )
        deployed.append(user.id)
    for start in range(0, len(deployed), 1000):
        chunk = deployed[start : start + 1000]
        s.execute(delete(Deployment).where(Deployment.user_id.in_(chunk)))
        s.execute(
            # A new deployment also retires the installed client's credential (a lost phone).
            update(U)
            .where(U.id.in_(chunk))
            .values(deployed_at=now, force_config=False, client_credential_hash=None),
            execution_options={"synchronize_session": False},
        )
    if deployments:
        s.execute(insert(Deployment.__table__), deployments)
        enqueue_rendered_later(
            s, messages, renderer=mail.RENDERER, source="client_deployment", now=now
        )
        for user_id in _locked_users(s, deployed):
            clear_alarm(lock_alarm_key(user_id), "The user was deployed again.", session=s, now=now)
    outcome.done += len(deployed)
    outcome.user_ids.extend(deployed)
    return outcome


def _locked_users(s: Session, ids: list[int]) -> set[int]:
    keys = set(active_alarm_keys("client_deployment.pin_lock.", session=s))
    return {i for i in ids if lock_alarm_key(i) in keys}


def set_force_config(
    s: Session,
    users: list[DeploymentUser],
    outcome: Outcome | None = None,
) -> Outcome:
    """Mark deployed users so that their client downloads its configuration at its next check."""
    outcome = outcome or Outcome()
    ready = []
    for user in users:
        if user.deployed_at is None:
            outcome.fail(_who(user), "not deployed yet: use Deploy (or Auto deploy)")
        else:
            ready.append(user.id)
    if ready:
        s.execute(
            update(U).where(U.id.in_(ready)).values(force_config=True),
            execution_options={"synchronize_session": False},
        )
    outcome.done += len(ready)
    return outcome


def auto_deploy(
    s: Session, users: list[DeploymentUser], config: dict[str, Any], outcome: Outcome | None = None
) -> Outcome:
    """Force Config for deployed users; Deploy for those never deployed (R-DEP7)."""
    outcome = outcome or Outcome()
    set_force_config(s, [u for u in users if u.deployed_at is not None], outcome)
    deploy_users(s, [u for u in users if u.deployed_at is None], config, outcome)
    return outcome


# --- redeeming ------------------------------------------------------------------------------


class Refused(Exception):
    """A redeem attempt that gets no configuration; `outcome` goes to the download log."""

    def __init__(self, outcome: str, user_id: int | None = None, tries_left: int | None = None):
        super().__init__(outcome)
        self.outcome = outcome
        self.user_id = user_id
        self.tries_left = tries_left


def lock_alarm_key(user_id: int) -> str:
    """The alarm of a deployment locked by wrong PINs."""
    return f"client_deployment.pin_lock.{user_id}"


def find(
    s: Session,
    *,
    link_token: str | None = None,
    auth_token: str | None = None,
) -> Deployment | None:
    """The deployment of a link token or an auth token."""
    if link_token:
        q = select(Deployment).where(Deployment.link_token_hash == digest(link_token))
    elif auth_token:
        q = select(Deployment).where(
            Deployment.auth_token_hash == digest(normal_auth_token(auth_token))
        )
    else:
        return None
    return s.scalars(q).first()


def check(s: Session, deployment: Deployment | None, now: datetime) -> Deployment:
    """The deployment if it can still be redeemed, else Refused with the reason."""
    if deployment is None:
        raise Refused("invalid")
    if deployment.locked_at is not None:
        raise Refused("locked", deployment.user_id)
    if deployment.expires_at <= now:
        raise Refused("expired", deployment.user_id)
    if deployment.downloads_left <= 0:
        raise Refused("used_up", deployment.user_id)
    return deployment


def check_pin(
    s: Session,
    deployment: Deployment,
    user: DeploymentUser,
    pin: str | None,
    settings: LinkSettings,
    now: datetime,
    remote_addr: str,
) -> None:
    """Refuse a missing or wrong PIN; the fifth wrong one locks the deployment (alarm)."""
    if not user.deployment_pin:
        return
    if not pin:
        raise Refused("pin_required", user.id)
    if hmac.compare_digest(pin.strip().encode(), user.deployment_pin.encode()):
        return
    # One statement: parallel wrong guesses are all counted.
    s.execute(
        update(Deployment)
        .where(Deployment.id == deployment.id)
        .values(pin_failures=Deployment.pin_failures + 1)
    )
    failures = s.scalar(select(Deployment.pin_failures).where(Deployment.id == deployment.id))
    if failures >= settings.pin_tries:
        s.execute(
            update(Deployment)
            .where(Deployment.id == deployment.id, Deployment.locked_at.is_(None))
            .values(locked_at=now)
        )
        raise_alarm(
            lock_alarm_key(user.id),
            "minor",
            ALARM_SOURCE,
            f"The deployment of {_who(user)} was locked after {failures} wrong PINs "
            f"(last from {remote_addr or 'an unknown address'}). Deploy the user again "
            "to give them a new link.",
            session=s,
            now=now,
        )
        raise Refused("locked", user.id)
    raise Refused("pin_wrong", user.id, tries_left=settings.pin_tries - failures)


def take_download(s: Session, deployment: Deployment, now: datetime) -> bool:
    """Use up one download, atomically: of many parallel requests only as many as are left win."""
    result = s.execute(
        update(Deployment)
        .where(
            Deployment.id == deployment.id,
            Deployment.downloads_left > 0,
            Deployment.expires_at > now,
            Deployment.locked_at.is_(None),
        )
        .values(downloads_left=Deployment.downloads_left - 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def issue_client_credential(user: DeploymentUser) -> str:
    """A new credential for the installed client (the previous client's stops working)."""
    credential = secrets.token_urlsafe(32)
    user.client_credential_hash = digest(credential)
    return credential


def user_for_credential(s: Session, credential: str) -> DeploymentUser | None:
    """The user whose installed client holds this credential."""
    if not credential:
        return None
    return s.scalars(select(U).where(U.client_credential_hash == digest(credential))).first()


def log_attempt(
    s: Session,
    *,
    user_id: int | None,
    outcome: str,
    remote_addr: str | None,
    user_agent: str | None,
    now: datetime,
) -> None:
    """Write one line of the download log."""
    s.add(
        DownloadLog(
            user_id=user_id,
            at=now,
            outcome=outcome,
            remote_addr=(remote_addr or "")[:64],
            user_agent=(user_agent or "")[:255],
        )
    )


def deployment_status(
    s: Session,
    user_id: int,
    limit: int = 20,
) -> tuple[Deployment | None, list[DownloadLog]]:
    """The user's live deployment (if any) and the latest lines of its download log."""
    deployment = s.scalars(select(Deployment).where(Deployment.user_id == user_id)).first()
    log = list(
        s.scalars(
            select(DownloadLog)
            .where(DownloadLog.user_id == user_id)
            .order_by(DownloadLog.at.desc(), DownloadLog.id.desc())
            .limit(limit)
        )
    )
    return deployment, log


def purge_expired(s: Session, now: datetime, app: Any) -> None:
    """Scheduled check: delete expired deployments; unknown-token log lines after 30 days."""
    s.execute(delete(Deployment).where(Deployment.expires_at <= now))
    s.execute(
        delete(DownloadLog).where(
            DownloadLog.user_id.is_(None), DownloadLog.at < now - timedelta(days=30)
        )
    )


def _who(user: DeploymentUser) -> str:
    return f"{user.first_name} {user.last_name}".strip() + f" (#{user.id})"
