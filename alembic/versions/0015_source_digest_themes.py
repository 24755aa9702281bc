"""a source's matches may wait for digests for some themes only

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

``sources.digest_themes``: the themes (slugs) whose matches from the source wait for the digest
of every chat that has one (``/source digest <name> <theme>``, ``digest_themes`` in the sources
file); a source whose ``alerts`` is ``digest`` sends all its matches there, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "digest_themes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("digest_themes")
