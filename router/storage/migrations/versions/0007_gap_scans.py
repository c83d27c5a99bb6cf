"""gap scans: the gap questions found in each conversation, kept by the scheduler

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gaps_scanned_at", _WHEN, nullable=True))
    op.create_table(
        "gap_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_gap_questions_conversation_id_conversations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gap_questions"),
    )
    op.create_index("ix_gap_questions_conversation_id", "gap_questions", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_gap_questions_conversation_id", table_name="gap_questions")
    op.drop_table("gap_questions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("gaps_scanned_at")
