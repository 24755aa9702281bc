"""subscribers choose which matches alert them instantly: every one, or the sure ones

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

``subscribers.instant_alerts``: ``all`` (every match alerts at once, as before) or ``sure``
(only matches the watchlist and the learned model agree on; the others wait for the digest).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "instant_alerts",
                sa.String(length=8),
                server_default=sa.text("'all'"),
                nullable=False,
            )
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_subscribers_instant_alerts"), "instant_alerts IN ('all', 'sure')"
        )


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_subscribers_instant_alerts"), type_="check")
        batch_op.drop_column("instant_alerts")
