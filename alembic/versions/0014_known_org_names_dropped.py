"""editors can say a name is no organisation's (``/names drop``)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

``known_org_names.kind``: ``same`` (a group of names of one organisation, as before) or
``drop`` (one name taken out of whichever organisation it names, shipped or added).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("known_org_names", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=8), server_default=sa.text("'same'"), nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_known_org_names_kind"), "kind IN ('same', 'drop')"
        )


def downgrade() -> None:
    with op.batch_alter_table("known_org_names", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_known_org_names_kind"), type_="check")
        batch_op.drop_column("kind")
