"""csl entries, watched orgs, reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``csl_entries`` keeps the Consolidated Screening List compactly (one row per entry, with a
content hash, never one copy per poll) and ``csl_changes`` what each poll saw change.
``watched_orgs`` holds the organisations a theme or a subscriber watches, ``reminders`` the
work queue of deadline reminders (unique per chat, document, date and lead time).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csl_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_csl_entries_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csl_entries")),
        sa.UniqueConstraint(
            "source_id", "entry_id", name=op.f("uq_csl_entries_source_id_entry_id")
        ),
    )
    with op.batch_alter_table("csl_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_csl_entries_source_id"), ["source_id"], unique=False)

    op.create_table(
        "watched_orgs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "aliases",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "(theme_id IS NULL) <> (subscriber_id IS NULL)", name=op.f("ck_watched_orgs_one_owner")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_watched_orgs_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["theme_id"],
            ["themes.id"],
            name=op.f("fk_watched_orgs_theme_id_themes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watched_orgs")),
        sa.UniqueConstraint(
            "subscriber_id", "name", name=op.f("uq_watched_orgs_subscriber_id_name")
        ),
        sa.UniqueConstraint("theme_id", "name", name=op.f("uq_watched_orgs_theme_id_name")),
    )
    with op.batch_alter_table("watched_orgs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_watched_orgs_subscriber_id"), ["subscriber_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_watched_orgs_theme_id"), ["theme_id"], unique=False)

    op.create_table(
        "csl_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(length=128), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column(
            "columns",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "before",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "change IN ('added', 'removed', 'changed')", name=op.f("ck_csl_changes_change")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_csl_changes_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_csl_changes_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csl_changes")),
    )
    with op.batch_alter_table("csl_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_csl_changes_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_csl_changes_observed_at"), ["observed_at"], unique=False
        )
        batch_op.create_index(
            "ix_csl_changes_source_id_entry_id", ["source_id", "entry_id"], unique=False
        )

    op.create_table(
        "reminders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("lead_days", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'skipped', 'cancelled')",
            name=op.f("ck_reminders_status"),
        ),
        sa.CheckConstraint("what IN ('effective', 'comments')", name=op.f("ck_reminders_what")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_reminders_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_reminders_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint(
            "subscriber_id",
            "item_id",
            "what",
            "on_date",
            "lead_days",
            name=op.f("uq_reminders_subscriber_id_item_id_what_on_date_lead_days"),
        ),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminders_item_id"), ["item_id"], unique=False)
        batch_op.create_index("ix_reminders_status_due_at", ["status", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_due_at")
        batch_op.drop_index(batch_op.f("ix_reminders_item_id"))

    op.drop_table("reminders")
    with op.batch_alter_table("csl_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_csl_changes_source_id_entry_id")
        batch_op.drop_index(batch_op.f("ix_csl_changes_observed_at"))
        batch_op.drop_index(batch_op.f("ix_csl_changes_item_id"))

    op.drop_table("csl_changes")
    with op.batch_alter_table("watched_orgs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watched_orgs_theme_id"))
        batch_op.drop_index(batch_op.f("ix_watched_orgs_subscriber_id"))

    op.drop_table("watched_orgs")
    with op.batch_alter_table("csl_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_csl_entries_source_id"))

    op.drop_table("csl_entries")
