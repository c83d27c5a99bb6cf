"""promises: SLA timers, scheduled work, satisfaction, agent email, admin settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_policy", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("waiting_since", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("survey_asked_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("csat_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("csat_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("csat_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("follow_up_at", _WHEN, nullable=True))
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.alter_column("sla_due_at", existing_type=_WHEN, nullable=True)
    op.create_table(
        "sla_timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=60), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("due_at", _WHEN, nullable=True),
        sa.Column("remaining_seconds", sa.Float(), nullable=True),
        sa.Column("warn_at", _WHEN, nullable=True),
        sa.Column("warned_at", _WHEN, nullable=True),
        sa.Column("breached_at", _WHEN, nullable=True),
        sa.Column("stopped_at", _WHEN, nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("late_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_sla_timers_conversation_id_conversations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sla_timers"),
    )
    op.create_index("ix_sla_timers_conversation_id", "sla_timers", ["conversation_id"])
    op.create_index("ix_sla_timers_open", "sla_timers", ["stopped_at", "due_at"])
    op.create_index("ix_sla_timers_warn", "sla_timers", ["stopped_at", "warn_at"])
    op.create_table(
        "scheduled",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_at", _WHEN, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("done_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_scheduled_conversation_id_conversations",
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_scheduled_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["agents.id"], name="fk_scheduled_created_by_agents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled"),
    )
    op.create_index("ix_scheduled_conversation_id", "scheduled", ["conversation_id"])
    op.create_index("ix_scheduled_due", "scheduled", ["status", "due_at"])
    op.create_index("ix_conversations_created", "conversations", ["created_at"])
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["agents.id"], name="fk_settings_updated_by_agents"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_messages_created", table_name="messages")
    op.drop_index("ix_conversations_created", table_name="conversations")
    op.drop_table("scheduled")
    op.drop_table("sla_timers")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.alter_column("sla_due_at", existing_type=_WHEN, nullable=False)
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        for column in (
            "follow_up_at",
            "csat_at",
            "csat_comment",
            "csat_score",
            "survey_asked_at",
            "waiting_since",
            "sla_policy",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("email")
