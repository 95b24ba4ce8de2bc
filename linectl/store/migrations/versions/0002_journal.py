"""journal: the hash-chained record of every action that changed something

Revision ID: 0002_journal
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_journal"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
OUTCOMES = ("ok", "refused", "denied", "error")


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(48), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(160), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_journal"),
        sa.UniqueConstraint("prev_hash", name="uq_journal_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_journal_hash"),
        sa.CheckConstraint(
            "outcome IN (" + ", ".join(repr(o) for o in OUTCOMES) + ")", name="ck_journal_outcome"
        ),
    )
    op.create_index("ix_journal_at", "journal", ["at"])
    op.create_index("ix_journal_user_name_at", "journal", ["user_name", "at"])
    op.create_index("ix_journal_target_at", "journal", ["target", "at"])


def downgrade() -> None:
    op.drop_table("journal")
