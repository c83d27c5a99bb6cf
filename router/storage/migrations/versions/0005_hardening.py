"""hardening: how long a reply is retried, the web-chat stream kept for replay

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "webchat_frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.String(length=120), nullable=False),
        sa.Column("frame", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webchat_frames"),
        sa.UniqueConstraint("visitor_id", "seq", name="uq_webchat_frames_visitor_id"),
        sa.UniqueConstraint("visitor_id", "frame_id", name="uq_webchat_frames_frame"),
    )


def downgrade() -> None:
    op.drop_table("webchat_frames")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("give_up_at")
