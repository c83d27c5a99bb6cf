"""teams: the team a conversation's queue is; what the shop says of a contact

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("team", sa.String(length=60), nullable=True))
    op.create_index("ix_conversations_team", "conversations", ["team", "status"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("attributes")
    op.drop_index("ix_conversations_team", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("team")
