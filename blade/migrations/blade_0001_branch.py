"""Start of the Client Deployment blade's branch (its tables follow in later revisions).

Revision ID: blade_0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

revision: str = "blade_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("blade",)
depends_on: str | Sequence[str] | None = "shell_0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
