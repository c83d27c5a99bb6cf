"""state the nodes share: inbox presence, login throttles, rate buckets

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("viewing", sa.Integer(), nullable=True),
        sa.Column("typing_until", sa.Float(), nullable=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_presence_agent_id_agents"),
        sa.PrimaryKeyConstraint("id", name="pk_presence"),
        sa.UniqueConstraint("node", "handle", name="uq_presence_node"),
    )
    op.create_index("ix_presence_agent_id", "presence", ["agent_id"])
    op.create_index("ix_presence_viewing", "presence", ["viewing"])
    op.create_index("ix_presence_seen_at", "presence", ["seen_at"])
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("next_allowed", sa.Float(), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttles"),
    )
    op.create_index("ix_login_throttles_last", "login_throttles", ["last"])
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.Column("full_at", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_buckets"),
    )
    op.create_index("ix_rate_buckets_full_at", "rate_buckets", ["full_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_buckets_full_at", table_name="rate_buckets")
    op.drop_table("rate_buckets")
    op.drop_index("ix_login_throttles_last", table_name="login_throttles")
    op.drop_table("login_throttles")
    op.drop_index("ix_presence_seen_at", table_name="presence")
    op.drop_index("ix_presence_viewing", table_name="presence")
    op.drop_index("ix_presence_agent_id", table_name="presence")
    op.drop_table("presence")
