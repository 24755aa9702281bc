"""when a source turned quiet (polls succeed, nothing new for longer than expected)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

``sources.quiet_since``: set when successful polls have brought nothing new for longer than
the source's expected period (``models.schedule.quiet_change``; admins are told once), cleared
when it brings new items again. NULL for every existing source: none has been reported.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("quiet_since")
