"""draws: the vehicles each draw chose among (the first k queued), hashed in the chain

Revision ID: 0005_draw_vehicles
Revises: 0006_alarms (re-chained after main took 0006 onto 0004)
Create Date: 2026-12-02

Draws recorded before this revision keep NULL: they had one vehicle, given,
and their hashes (which did not cover a `vehicles` field) still verify.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_draw_vehicles"
down_revision: str | None = "0006_alarms"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("draws") as batch:
        batch.add_column(sa.Column("vehicles", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("draws") as batch:
        batch.drop_column("vehicles")
