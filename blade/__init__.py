"""The Client Deployment blade: deployment profiles, MBG connections, users and deployment."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

from server_manager_stub.blades import Blade, MenuItem, ScheduledCheck

TITLE = "Client Deployment"


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

    def scheduled_checks(self) -> list[ScheduledCheck]:
        """None yet: MBG expiry and deployment clean-up arrive with their features."""
        return []

    def migrations_dir(self) -> Path:
        """The blade's Alembic branch."""
        return Path(__file__).parent / "migrations"

    def init_app(self, app: Flask) -> None:
        """Import the models so the shared metadata knows the blade's tables."""
        from . import models  # noqa: F401
