"""learned models per theme, feedback on alerts, which layer matched

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

``theme_models`` keeps every version of a theme's learned model as JSON (one active);
``feedback`` holds subscribers' 👍 / 👎 / "wrong theme" per item and theme; ``item_themes``
records which layer matched (rules, model or both), the rules that fired and the model's
verdict; ``themes.model_enabled`` lets editors turn the model off per theme.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("themes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("model_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("item_themes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "layer", sa.String(length=8), server_default=sa.text("'rules'"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("rules", JSON, nullable=True))
        batch_op.add_column(sa.Column("model", JSON, nullable=True))
        batch_op.create_check_constraint("layer", "layer IN ('rules', 'model', 'both')")

    op.create_table(
        "theme_models",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("model", JSON, nullable=False),
        sa.CheckConstraint("origin IN ('shipped', 'trained')", name=op.f("ck_theme_models_origin")),
        sa.ForeignKeyConstraint(
            ["theme_id"],
            ["themes.id"],
            name=op.f("fk_theme_models_theme_id_themes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_theme_models")),
        sa.UniqueConstraint("theme_id", "version", name=op.f("uq_theme_models_theme_id_version")),
    )
    with op.batch_alter_table("theme_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_theme_models_theme_id"), ["theme_id"], unique=False)

    op.create_table(
        "feedback",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("verdict IN ('up', 'down', 'wrong')", name=op.f("ck_feedback_verdict")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_feedback_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_feedback_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["theme_id"],
            ["themes.id"],
            name=op.f("fk_feedback_theme_id_themes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "subscriber_id",
            "item_id",
            "theme_id",
            name=op.f("uq_feedback_subscriber_id_item_id_theme_id"),
        ),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_theme_id"), ["theme_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_updated_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_theme_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_item_id"))
    op.drop_table("feedback")
    with op.batch_alter_table("theme_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_theme_models_theme_id"))
    op.drop_table("theme_models")
    with op.batch_alter_table("item_themes", schema=None) as batch_op:
        batch_op.drop_constraint("layer", type_="check")
        batch_op.drop_column("model")
        batch_op.drop_column("rules")
        batch_op.drop_column("layer")
    with op.batch_alter_table("themes", schema=None) as batch_op:
        batch_op.drop_column("model_enabled")
