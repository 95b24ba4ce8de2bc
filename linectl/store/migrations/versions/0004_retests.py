"""retests and published results: each retest's request and items; every result as published

Revision ID: 0004_retests
Revises: 0003_accounts
Create Date: 2026-12-03

`published_results` keeps the payload of every revision exactly as published,
for good (outbox rows may be pruned once delivered). Results published before
this revision are taken over from the outbox rows that still hold them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_retests"
down_revision: str | None = "0003_accounts"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("after_draw_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retests"),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name="fk_retests_inspection_id_inspections"
        ),
        sa.UniqueConstraint("inspection_id", "revision", name="uq_retests_inspection_id_revision"),
        sa.UniqueConstraint("request_id", name="uq_retests_request_id"),
        sa.CheckConstraint("revision >= 2", name="ck_retests_revision"),
    )
    published = op.create_table(
        "published_results",
        sa.Column("inspection_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("inspection_id", "revision", name="pk_published_results"),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name="fk_published_results_inspection_id_inspections",
        ),
    )
    # Results published before this revision: their outbox rows hold the very text sent.
    outbox = sa.table(
        "outbox",
        sa.column("kind", sa.String()),
        sa.column("inspection_id", sa.String()),
        sa.column("revision", sa.Integer()),
        sa.column("payload", sa.Text()),
        sa.column("created_at", TS),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(outbox.c.inspection_id, outbox.c.revision, outbox.c.created_at, outbox.c.payload)
        .where(
            outbox.c.kind == "result",
            outbox.c.inspection_id.is_not(None),
            outbox.c.revision.is_not(None),
        )
        .order_by(outbox.c.inspection_id, outbox.c.revision)
    ).all()
    if rows:
        op.bulk_insert(
            published,
            [
                {
                    "inspection_id": r.inspection_id,
                    "revision": r.revision,
                    "at": r.created_at,
                    "payload": r.payload.encode("utf-8"),
                }
                for r in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("published_results")
    op.drop_table("retests")
