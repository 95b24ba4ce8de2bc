"""initial schema: inspections, attempts, proxy drivers, draws, registrations, outbox

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-05

Written out in full rather than imported from the models, so this revision
keeps creating the same schema whatever the models become later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


INSPECTION_STATES = ("registered", "queued", "in_progress", "completed", "aborted")
DRIVER_STATES = ("on_duty", "off_duty", "break")


def upgrade() -> None:
    op.create_table(
        "proxy_drivers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), server_default=sa.text("''"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_proxy_drivers"),
        sa.CheckConstraint(_one_of("state", DRIVER_STATES), name="ck_proxy_drivers_state"),
    )
    op.create_index("ix_proxy_drivers_line", "proxy_drivers", ["line"])

    op.create_table(
        "driver_duty_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("driver_id", sa.String(64), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_driver_duty_log"),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["proxy_drivers.id"],
            name="fk_driver_duty_log_driver_id_proxy_drivers",
        ),
        sa.CheckConstraint(_one_of("state", DRIVER_STATES), name="ck_driver_duty_log_state"),
    )
    op.create_index("ix_driver_duty_log_driver_id", "driver_duty_log", ["driver_id"])

    op.create_table(
        "inspections",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("inspection_type", sa.String(16), nullable=False),
        sa.Column("vehicle", sa.JSON(), nullable=False),
        sa.Column("plate", sa.String(32), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("revision", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("proxy_driver_id", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("abort_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inspections"),
        sa.UniqueConstraint("request_id", name="uq_inspections_request_id"),
        sa.ForeignKeyConstraint(
            ["proxy_driver_id"],
            ["proxy_drivers.id"],
            name="fk_inspections_proxy_driver_id_proxy_drivers",
        ),
        sa.CheckConstraint(_one_of("state", INSPECTION_STATES), name="ck_inspections_state"),
        sa.CheckConstraint(
            _one_of("verdict", ("pass", "fail", "incomplete")), name="ck_inspections_verdict"
        ),
    )
    op.create_index("ix_inspections_created_at", "inspections", ["created_at"])
    op.create_index("ix_inspections_state", "inspections", ["state"])
    op.create_index("ix_inspections_line_created_at", "inspections", ["line", "created_at"])
    op.create_index("ix_inspections_plate", "inspections", ["plate"])
    op.create_index("ix_inspections_vin", "inspections", ["vin"])

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(8), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("curve", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name="fk_attempts_inspection_id_inspections"
        ),
        sa.UniqueConstraint(
            "inspection_id",
            "item_code",
            "attempt_no",
            name="uq_attempts_inspection_id_item_code_attempt_no",
        ),
        sa.CheckConstraint(
            _one_of("verdict", ("pass", "fail", "not_judged")), name="ck_attempts_verdict"
        ),
        sa.CheckConstraint("attempt_no >= 1", name="ck_attempts_attempt_no"),
    )

    op.create_table(
        "draws",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("chosen", sa.String(64), nullable=False),
        sa.Column("drawn_at", TS, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_draws"),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name="fk_draws_inspection_id_inspections"
        ),
        sa.UniqueConstraint("prev_hash", name="uq_draws_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_draws_hash"),
    )
    op.create_index("ix_draws_line", "draws", ["line"])
    op.create_index("ix_draws_inspection_id", "draws", ["inspection_id"])

    op.create_table(
        "registrations",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=True),
        sa.Column("reply", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_registrations"),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name="fk_registrations_inspection_id_inspections",
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name="fk_outbox_inspection_id_inspections"
        ),
        sa.UniqueConstraint(
            "kind", "inspection_id", "revision", name="uq_outbox_kind_inspection_id_revision"
        ),
        # Ids give the publishing order: SQLite must never reuse one.
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "registrations",
        "draws",
        "attempts",
        "inspections",
        "driver_duty_log",
        "proxy_drivers",
    ):
        op.drop_table(table)
