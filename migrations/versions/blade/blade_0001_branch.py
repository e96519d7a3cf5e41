"""Start of the Client Deployment blade's branch (its tables follow in later revisions).

Revision ID: blade_0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

revision: str = "blade_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("blade",)
# No dependency on the shell branch: the blade keys none of its tables to shell tables, and
# independent branches keep both heads in alembic_version (a disabled blade stays harmless).
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
