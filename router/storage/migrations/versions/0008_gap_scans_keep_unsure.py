"""gap scans keep the question of an unsure handoff: every conversation is scanned again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Until the scheduler's gap scan has seen a conversation again, the gap report
    # reads it message by message (as it does any conversation changed since its scan).
    op.execute("DELETE FROM gap_questions")
    op.execute("UPDATE conversations SET gaps_scanned_at = NULL")


def downgrade() -> None:
    op.execute("DELETE FROM gap_questions")
    op.execute("UPDATE conversations SET gaps_scanned_at = NULL")
