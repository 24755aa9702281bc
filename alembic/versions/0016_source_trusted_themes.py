"""an admin may keep a source's unsure matches of a theme instant, whatever feedback says

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

``sources.trusted_themes``: the themes (slugs) whose unsure matches from the source alert at
once even when subscribers' feedback on them would send them to digests (wary sources,
``models.feedback.WaryPolicy``; ``/source trust <name> <theme>``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "trusted_themes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("trusted_themes")
