"""events: one real-world happening across sources and languages

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``events`` and ``item_events`` record which items report the same happening and why;
``item_keys`` indexes items by their hard keys and anchors over time, so assigning a new item
reads a time window of a few keys. ``deliveries.event_id`` ties alerts and their threaded
updates to the event.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("item_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["events.id"],
            name=op.f("fk_events_merged_into_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_first_at"), ["first_at"], unique=False)

    op.create_table(
        "item_events",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("signature", JSON, nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_item_events_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_events_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_events")),
    )
    with op.batch_alter_table("item_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_events_event_id"), ["event_id"], unique=False)

    op.create_table(
        "item_keys",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_keys_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", "key", name=op.f("pk_item_keys")),
    )
    with op.batch_alter_table("item_keys", schema=None) as batch_op:
        batch_op.create_index("ix_item_keys_key_at", ["key", "at"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_event_id_events"),
            "events",
            ["event_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_event_id_events"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deliveries_event_id"))
        batch_op.drop_column("event_id")
    with op.batch_alter_table("item_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_item_keys_key_at")
    op.drop_table("item_keys")
    with op.batch_alter_table("item_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_events_event_id"))
    op.drop_table("item_events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_first_at"))
    op.drop_table("events")
