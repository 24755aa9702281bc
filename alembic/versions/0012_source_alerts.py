"""a source's matches may go to digests only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

``sources.alerts``: ``instant`` (its matches alert at once, as before) or ``digest`` (a noisy
feed: its matches wait for the digest of every chat that has one; ``/source digest <name>``
or ``alerts: digest`` in the sources file).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "alerts", sa.String(length=8), server_default=sa.text("'instant'"), nullable=False
            )
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_sources_alerts"), "alerts IN ('instant', 'digest')"
        )


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_sources_alerts"), type_="check")
        batch_op.drop_column("alerts")
