"""neighbour indexes: the labelled vectors a training run's models vote with

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

``neighbour_indexes`` keeps each training run's index of labelled sentence vectors
(``models.neighbours``, its own binary form: never pickle), by digest; ``theme_models`` names
the index a version reads, so an index no version reads can be deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "neighbour_indexes",
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("encoder", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_neighbour_indexes")),
    )
    with op.batch_alter_table("theme_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("neighbour_index", sa.String(length=80), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_theme_models_neighbour_index"), ["neighbour_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("theme_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_theme_models_neighbour_index"))
        batch_op.drop_column("neighbour_index")
    op.drop_table("neighbour_indexes")
