"""The lab store, version 1: every shipped table with its bench id; marks; the lab queue.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "n", name="events_pkey"),
    )
    op.create_table(
        "formulations",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("bench_id", "hash", name="formulations_pkey"),
    )
    op.create_table(
        "lab_meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "lab_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("protocol", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("bench_id", sa.Text(), nullable=True),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("runner", sa.Text(), nullable=True),
        sa.Column("local_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column(
            "lease_until",
            postgresql.TIMESTAMP(timezone=True).with_variant(sa.Text(), "sqlite"),
            nullable=True,
        ),
        sa.Column("added_at", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("lab_queue_waiting", "lab_queue", ["status", "id"], unique=False)
    op.create_table(
        "measurements",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("wafer_id", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("x_mm", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("y_mm", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column(
            "dose_requested_mJ_cm2", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True
        ),
        sa.Column(
            "dose_delivered_mJ_cm2", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True
        ),
        sa.Column("thickness_nm", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column(
            "thickness_error_nm", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True
        ),
        sa.Column("refractive_index", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("mse", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("formulation_hash", sa.Text(), nullable=True),
        sa.Column("measured_at", sa.Text(), nullable=False),
        sa.Column("bench_time", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("wall_time", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "n", name="measurements_pkey"),
    )
    op.create_table(
        "moves",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("wafer_id", sa.Text(), nullable=False),
        sa.Column("after_seq", sa.Integer(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "id", name="moves_pkey"),
    )
    op.create_index("moves_run", "moves", ["bench_id", "run_id"], unique=False)
    op.create_table(
        "runs",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("protocol", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("recipe", sa.Text(), nullable=True),
        sa.Column("formulation_hash", sa.Text(), nullable=True),
        sa.Column("station", sa.Text(), nullable=True),
        sa.Column("software", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("simulated", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "run_id", name="runs_pkey"),
    )
    op.create_index("runs_created", "runs", ["created_at"], unique=False)
    op.create_index("runs_formulation", "runs", ["formulation_hash"], unique=False)
    op.create_table(
        "samples",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("t", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("value", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("bench_time", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("wall_time", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "n", name="samples_pkey"),
    )
    op.create_table(
        "ship_marks",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("shipped", sa.BigInteger(), nullable=False),
        sa.Column("shipped_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "table_name", name="ship_marks_pkey"),
    )
    op.create_table(
        "steps",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("wafer_id", sa.Text(), nullable=True),
        sa.Column("repeatable", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("bench_started", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("bench_finished", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "seq", name="steps_pkey"),
    )
    op.create_table(
        "wafers",
        sa.Column("bench_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("wafer_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("replaces", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bench_id", "run_id", "wafer_id", name="wafers_pkey"),
    )


def downgrade() -> None:
    op.drop_table("wafers")
    op.drop_table("steps")
    op.drop_table("ship_marks")
    op.drop_table("samples")
    op.drop_index("runs_formulation", table_name="runs")
    op.drop_index("runs_created", table_name="runs")
    op.drop_table("runs")
    op.drop_index("moves_run", table_name="moves")
    op.drop_table("moves")
    op.drop_table("measurements")
    op.drop_index("lab_queue_waiting", table_name="lab_queue")
    op.drop_table("lab_queue")
    op.drop_table("lab_meta")
    op.drop_table("formulations")
    op.drop_table("events")
