"""a verdict keeps whether the match it judges was sure when the alert went out

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

``feedback.sure``: whether the (item, theme) match the verdict judges was sure when its alert
was planned (``models.alerts.is_sure``: the watchlist and the learned model agreed, or the
watchlist matched a theme no model judged). Wary sources (``models.feedback.unsure_record``)
count only unsure alerts; a theme's model switched on later no longer turns its earlier sure
alerts into unsure ones. NULL for verdicts given before this column (and on alerts planned
before it): those are judged by how the theme matches the item now, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sure", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("sure")
