"""The schema exists only through migrations: they build it, match the models, and undo cleanly."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from persistence.models import Base
from service.postgres import fresh_database, run_alembic


def test_upgrade_matches_the_models_and_downgrade_removes_everything() -> None:
    with fresh_database("batchcam_migrations") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                tables = set(inspect(connection).get_table_names())
                assert {
                    "tenants",
                    "api_keys",
                    "datasets",
                    "jobs",
                    "job_events",
                    "job_epochs",
                    "models",
                } <= tables
                assert {"explanations", "idempotency_records", "alembic_version"} <= tables
                differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
                assert differences == [], differences
                columns = {column["name"] for column in inspect(connection).get_columns("explanations")}
                assert {"lease_owner", "lease_expires_at", "started_at", "updated_at"} <= columns
                indexes = {index["name"] for index in inspect(connection).get_indexes("explanations")}
                assert "ix_explanations_state_lease" in indexes
            run_alembic(url, upgrade=False, revision="base")
            with engine.connect() as connection:
                assert set(inspect(connection).get_table_names()) == {"alembic_version"}
            run_alembic(url, upgrade=True, revision="head")  # and back up again
        finally:
            engine.dispose()


def test_migrations_also_build_the_embedded_sqlite_schema(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    run_alembic(url, upgrade=True, revision="head")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
    run_alembic(url, upgrade=False, revision="base")


def test_explanation_leases_are_backfilled_and_undone_with_data_in_place() -> None:
    """0001 → 0002 on existing rows: running ones get an expired lease (the sweep takes them back),
    every row gets ``updated_at`` from ``created_at``; and 0002 → 0001 keeps the rows."""
    tenant, job, model = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    running, queued = uuid.uuid4(), uuid.uuid4()
    with fresh_database("batchcam_migrations") as url:
        run_alembic(url, upgrade=True, revision="0001")
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text("INSERT INTO tenants (id, name, created_at) VALUES (:t, 't', now())"), {"t": tenant}
                )
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, tenant_id, spec, state, progress, attempt, max_attempts, "
                        "created_at, updated_at) VALUES (:j, :t, '{}', 'succeeded', '{}', 1, 3, now(), now())"
                    ),
                    {"j": job, "t": tenant},
                )
                connection.execute(
                    text(
                        "INSERT INTO models (id, tenant_id, job_id, spec, summary, artifacts, created_at) "
                        "VALUES (:m, :t, :j, '{}', '{}', '{}', now())"
                    ),
                    {"m": model, "t": tenant, "j": job},
                )
                for explanation, state in ((running, "running"), (queued, "queued")):
                    connection.execute(
                        text(
                            "INSERT INTO explanations (id, tenant_id, model_id, state, request, attempt, "
                            "created_at) VALUES (:e, :t, :m, :s, '{}', 1, '2026-01-01T00:00:00Z')"
                        ),
                        {"e": explanation, "t": tenant, "m": model, "s": state},
                    )
            run_alembic(url, upgrade=True, revision="head")
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT id, lease_expires_at, updated_at = created_at FROM explanations")
                ).all()
            leases = {row[0]: row[1] for row in rows}
            assert leases[running] is not None and leases[queued] is None
            assert all(row[2] for row in rows)
            run_alembic(url, upgrade=False, revision="0001")
            with engine.connect() as connection:
                assert connection.scalar(text("SELECT count(*) FROM explanations")) == 2
        finally:
            engine.dispose()
