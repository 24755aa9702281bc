"""audit_log.entity_key is text (a watchlist rule is up to 500 characters)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The key of a watchlist audit entry is ``<theme>:<rule>``; as VARCHAR(255) any rule over about
245 characters made ``/watch add`` and ``/watch remove`` fail on PostgreSQL (SQLite does not
enforce the length).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "entity_key",
            existing_type=sa.String(length=255),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    op.execute("UPDATE audit_log SET entity_key = substr(entity_key, 1, 255)")
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "entity_key",
            existing_type=sa.Text(),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
