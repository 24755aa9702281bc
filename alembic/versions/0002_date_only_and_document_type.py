"""items.published_date_only; Federal Register facts under their declared names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Federal Register documents are published on a date, not at a time: ``published_date_only`` says
so, and renderers show the date without inventing a time. Existing Federal Register items get
it set, and their ``fields["type"]`` (the parser's old name, which no renderer read) becomes
``fields["document_type"]``, so stored documents show their type too.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
items = sa.table(
    "items",
    sa.column("id", sa.BigInteger()),
    sa.column("source_id", sa.BigInteger()),
    sa.column("fields", JSON),
    sa.column("published_date_only", sa.Boolean()),
)
sources = sa.table("sources", sa.column("id", sa.BigInteger()), sa.column("kind", sa.String()))
BATCH = 1000


def _rename(old: str, new: str) -> None:
    """Move ``fields[old]`` to ``fields[new]`` for every Federal Register item (in batches)."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(items.c.id, items.c.fields)
            .join(sources, sources.c.id == items.c.source_id)
            .where(sources.c.kind == "federal_register", items.c.id > last)
            .order_by(items.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for item_id, fields in rows:
            if isinstance(fields, dict) and old in fields:
                changed: dict[str, Any] = {k: v for k, v in fields.items() if k != old}
                changed.setdefault(new, fields[old])
                bind.execute(sa.update(items).where(items.c.id == item_id).values(fields=changed))
        last = rows[-1][0]


def _federal_register_ids() -> Any:
    return sa.select(sources.c.id).where(sources.c.kind == "federal_register").scalar_subquery()


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "published_date_only", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.get_bind().execute(
        sa.update(items)
        .where(items.c.source_id.in_(_federal_register_ids()))
        .values(published_date_only=True)
    )
    _rename("type", "document_type")


def downgrade() -> None:
    _rename("document_type", "type")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("published_date_only")
