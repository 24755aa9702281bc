"""a forum chat routes each theme, and its digest, to a topic of its own

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

``subscriptions.topic_id``: the forum topic (``message_thread_id``) the theme was subscribed
from, where its alerts and reminders go; ``subscribers.digest_topic_id``: the topic the digest
was scheduled from. NULL: the chat itself (a forum's General topic).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topic_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_topic_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("digest_topic_id")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("topic_id")
