"""Timestamps come back as aware UTC datetimes on both backends (SQLite stores no zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from persistence.db import transaction
from persistence.models import Tenant, utcnow
from service.postgres import run_alembic


def test_sqlite_hands_back_aware_utc_datetimes_for_the_same_instant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    run_alembic(url, upgrade=True, revision="head")
    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    written = datetime(2026, 11, 26, 12, 30, tzinfo=timezone(timedelta(hours=2)))  # 10:30 UTC
    try:
        with transaction(sessions) as session:
            session.add(Tenant(name="a", created_at=written))
            session.add(Tenant(name="b", created_at=datetime(2026, 11, 26, 10, 30)))  # naive: taken as UTC
        with sessions() as session:
            read = session.scalars(select(Tenant.created_at).order_by(Tenant.name)).all()
    finally:
        engine.dispose()
    assert [value.tzinfo for value in read] == [UTC, UTC]
    assert read[0] == written and read[1] == written
    assert utcnow() - read[0] > timedelta(0)  # arithmetic with aware "now" works (it raised before)
