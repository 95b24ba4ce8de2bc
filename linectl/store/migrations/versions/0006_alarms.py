"""alarms: each occurrence of an alarm condition and its ISA-18.2 state

Revision ID: 0006_alarms
Revises: 0004_retests
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_alarms"
down_revision: str | None = "0004_retests"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
PRIORITIES = "priority IN ('high', 'medium', 'low')"
STATES = (
    "state IN ('unacked', 'acked', 'rtn_unacked', 'shelved', 'suppressed', "
    "'out_of_service', 'closed')"
)


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("cleared_at", TS, nullable=True),
        sa.Column("acked_by", sa.String(64), nullable=True),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("silenced", sa.Boolean(), nullable=False),
        sa.Column("silenced_by", sa.String(64), nullable=True),
        sa.Column("shelved_by", sa.String(64), nullable=True),
        sa.Column("shelved_until", TS, nullable=True),
        sa.Column("shelve_reason", sa.Text(), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alarms"),
        sa.CheckConstraint(PRIORITIES, name="ck_alarms_priority"),
        sa.CheckConstraint(STATES, name="ck_alarms_state"),
    )
    op.create_index("ix_alarms_state", "alarms", ["state"])
    op.create_index("ix_alarms_key_raised_at", "alarms", ["key", "raised_at"])
    op.create_index("ix_alarms_raised_at", "alarms", ["raised_at"])


def downgrade() -> None:
    op.drop_table("alarms")
