"""a chat's quiet hours may let chosen themes through

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

``subscriptions.through_quiet``: the theme's alerts come at any hour, quiet hours or not
(``/quiet 22:00-07:00 except <theme>``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("through_quiet", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("through_quiet")
