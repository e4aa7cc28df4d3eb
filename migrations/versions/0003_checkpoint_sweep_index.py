"""checkpoint sweep index

The sweep removes the checkpoints of ended jobs that still name one (``persistence.jobs.checkpoints``).
A partial index over the rows with a ``checkpoint_key`` keeps that look cheap however many jobs have
ended: once swept, a job leaves the index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = sa.text("checkpoint_key IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_checkpoint_held", "jobs", ["state"], unique=False, postgresql_where=HELD, sqlite_where=HELD
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_checkpoint_held", table_name="jobs")
