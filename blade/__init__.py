"""The Client Deployment blade: deployment profiles, MBG connections, users and deployment."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask
from sqlalchemy.orm import Session

from server_manager_stub.blades import Blade, MenuItem, ScheduledCheck
from server_manager_stub.config import ConfigError, Setting, number, text
from server_manager_stub.validators import whole_number

TITLE = "Client Deployment"


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = whole_number(raw, high)
        if value is None or value < low:
            raise ConfigError(f"must be a whole number from {low} to {high}, got {raw!r}")
        return value

    return parse


def _scheme(raw: str) -> str:
    if raw.strip() not in ("https", "http"):
        raise ConfigError(f"must be https or http, got {raw!r}")
    return raw.strip()


class ClientDeploymentBlade(Blade):
    """What the shell loads through the `server_manager.blades` entry point."""

    def __init__(self) -> None:
        super().__init__(
            name="client_deployment",
            title=TITLE,
            menu=[
                MenuItem("Users", "client_deployment.users", group=TITLE),
                MenuItem("Deployment Profiles", "client_deployment.profiles", group=TITLE),
                MenuItem("Configuration", "client_deployment.configuration", group=TITLE),
                MenuItem("Diagnostics", "client_deployment.diagnostics", group=TITLE),
            ],
        )

    def blueprints(self) -> list[Blueprint]:
        """The blade's one blueprint, under /client-deployment/."""
        from .views import bp

        return [bp]

    def settings(self) -> tuple[Setting, ...]:
        """The blade's environment settings (listed in docs/configuration.md)."""
        return (
            Setting(
                "MBG_TIMEOUT",
                number(0.1, 300),
                15.0,
                "Seconds to wait for an MBG's web service (connecting takes at most 5).",
            ),
            Setting(
                "MBG_CA_BUNDLE",
                text,
                "",
                "PEM file of extra CAs to trust for MBG web services with private "
                "certificates. Empty: the system's trusted CAs only.",
            ),
            Setting(
                "LOCAL_MBG",
                text,
                "",
                "Host[:port] of the local MBG; `server-manager init` creates a 'Local MBG' "
                "connection for it once. `make run` points it at the MBG stand-in.",
            ),
            Setting(
                "DEPLOY_LINK_SCHEME",
                _scheme,
                "https",
                "Scheme of deployment links: https (`make run` uses http for its local server).",
            ),
            Setting(
                "DEPLOY_LINK_PORT",
                _whole(0, 65535),
                0,
                "Port in deployment links; 0 (default) leaves it out (443 for https).",
            ),
            Setting(
                "DEPLOY_DOWNLOADS",
                _whole(1, 100),
                3,
                "How many times a deployment's configuration can be downloaded.",
            ),
            Setting(
                "DEPLOY_DAYS",
                _whole(1, 365),
                42,
                "Days a deployment stays valid; then its data is deleted (6 weeks).",
            ),
            Setting(
                "DEPLOY_PIN_TRIES",
                _whole(1, 20),
                5,
                "Wrong Deployment PINs that lock a deployment (and raise an alarm).",
            ),
        )

    def scheduled_checks(self) -> list[ScheduledCheck]:
        """MBG expiry alarms; clean-up of expired deployments and old CSV import results."""
        from .csv_io import purge_results
        from .deploy import purge_expired
        from .mbg import check_expiry

        return [
            ScheduledCheck("mbg_expiry", check_expiry),
            ScheduledCheck("purge_import_results", purge_results, every_seconds=3600),
            ScheduledCheck("purge_expired_deployments", purge_expired),
        ]

    def initialize(self, s: Session, app: Flask) -> list[str]:
        """Create the Local MBG connection when LOCAL_MBG names one."""
        from .mbg import ensure_local_connection

        connection = ensure_local_connection(s, app.config.get("LOCAL_MBG", ""))
        if connection is None:
            return []
        return [
            f"Created the MBG connection {connection.name!r} for {connection.host}; "
            "authorize it under Client Deployment › Configuration."
        ]

    def init_app(self, app: Flask) -> None:
        """Import the models (the shared metadata knows the tables); register the e-mail."""
        from server_manager_stub.outbox import register_renderer

        from . import mail, models  # noqa: F401

        register_renderer(mail.RENDERER, mail.render, secret_args=("link", "authtoken"))
