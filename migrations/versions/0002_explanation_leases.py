"""explanation leases

Explanations get what jobs have (docs/ARCHITECTURE.md §6.3): a lease that a heartbeat renews, and
``updated_at`` so the sweep can re-send a queued explanation whose broker message was lost.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

explanations = sa.table(
    "explanations",
    sa.column("state", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("lease_expires_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("explanations") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # Queued rows count as last sent when created: the first sweep re-sends the ones waiting too long.
    op.execute(explanations.update().values(updated_at=explanations.c.created_at))
    # Rows running before leases existed have no lease: expire them now so the sweep re-queues them
    # (a worker of the old code still running one loses its claim: its late result is refused).
    op.execute(
        explanations.update()
        .where(explanations.c.state == "running")
        .values(lease_expires_at=sa.func.current_timestamp())
    )
    with op.batch_alter_table("explanations") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index(
        "ix_explanations_state_lease", "explanations", ["state", "lease_expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_explanations_state_lease", table_name="explanations")
    with op.batch_alter_table("explanations") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("started_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
