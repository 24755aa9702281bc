"""editors add names of organisations known by several names

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

``known_org_names``: each row a group of names of one organisation that an editor added from
the chat (``/names add``); it joins the shipped organisation (``models/data/known_orgs.json``)
or earlier group it shares a name with, or is an organisation of its own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "known_org_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_org_names")),
    )


def downgrade() -> None:
    op.drop_table("known_org_names")
