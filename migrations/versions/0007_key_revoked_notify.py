"""notify key revocations: API processes forget a cached verified key the moment it is revoked

- On Postgres, a trigger ``NOTIFY``s ``batchcam_key_revoked`` with a key's id when its ``revoked_at``
  is set or its row is deleted (``api/http/verified_keys.py`` explains the cache it invalidates).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no notifications; the API does not cache keys there
    op.execute(
        """
        CREATE FUNCTION batchcam_notify_key_revoked() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('batchcam_key_revoked', OLD.id::text);
            ELSIF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
                PERFORM pg_notify('batchcam_key_revoked', NEW.id::text);
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER api_keys_notify_revoked AFTER UPDATE OF revoked_at OR DELETE ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION batchcam_notify_key_revoked()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_keys_notify_revoked ON api_keys")
        op.execute("DROP FUNCTION IF EXISTS batchcam_notify_key_revoked()")
