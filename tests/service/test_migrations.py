"""The schema exists only through migrations: they build it, match the models, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
