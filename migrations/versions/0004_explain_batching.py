"""explain batching: image counts, small requests inline, change notifications

- ``explanations.image_count``: how many images a request holds, so that an explain worker can claim
  several small queued requests of one model together up to an image budget (dynamic batching).
- ``explanations.inline_inputs`` / ``inline_maps``: a small request's uploaded images and its maps
  live in its row, which saves the object store's round trips on the hot path (large ones stay in the
  object store, as before).
- A partial index over queued rows by model: the batch claim's look.
- On Postgres, triggers ``NOTIFY`` when an explanation ends and when a job changes or records an
  event, so the API's ``?wait`` and event streams are woken instead of polling
  (``persistence.notifications``). SQLite has no notifications: the embedded default polls.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("state = 'queued'")

# Channel names and payloads are persistence.notifications' contract.
TRIGGERS = """
CREATE TRIGGER explanations_notify_ended AFTER UPDATE OF state ON explanations FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION batchcam_notify_explanation_ended();
CREATE TRIGGER jobs_notify_changed AFTER UPDATE ON jobs FOR EACH ROW
    EXECUTE FUNCTION batchcam_notify_job_changed_by_id();
CREATE TRIGGER job_events_notify_changed AFTER INSERT ON job_events FOR EACH ROW
    EXECUTE FUNCTION batchcam_notify_job_changed_by_job_id();
"""


def upgrade() -> None:
    with op.batch_alter_table("explanations") as batch:
        batch.add_column(sa.Column("image_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("inline_inputs", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("inline_maps", sa.LargeBinary(), nullable=True))
    op.create_index(
        "ix_explanations_queued_model",
        "explanations",
        ["model_id", "created_at"],
        unique=False,
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, column in (("by_id", "id"), ("by_job_id", "job_id")):
            op.execute(
                f"""
                CREATE FUNCTION batchcam_notify_job_changed_{name}() RETURNS trigger AS $$
                BEGIN
                    PERFORM pg_notify('batchcam_job_changed', NEW.{column}::text);
                    RETURN NULL;
                END $$ LANGUAGE plpgsql
                """
            )
        op.execute(
            """
            CREATE FUNCTION batchcam_notify_explanation_ended() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('batchcam_explanation_ended', NEW.id::text);
                RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        for statement in TRIGGERS.split(";"):
            if statement.strip():
                op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS job_events_notify_changed ON job_events")
        op.execute("DROP TRIGGER IF EXISTS jobs_notify_changed ON jobs")
        op.execute("DROP TRIGGER IF EXISTS explanations_notify_ended ON explanations")
        op.execute("DROP FUNCTION IF EXISTS batchcam_notify_job_changed_by_job_id()")
        op.execute("DROP FUNCTION IF EXISTS batchcam_notify_job_changed_by_id()")
        op.execute("DROP FUNCTION IF EXISTS batchcam_notify_explanation_ended()")
    op.drop_index("ix_explanations_queued_model", table_name="explanations")
    with op.batch_alter_table("explanations") as batch:
        batch.drop_column("inline_maps")
        batch.drop_column("inline_inputs")
        batch.drop_column("image_count")
