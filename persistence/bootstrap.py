"""One-shot set-up after migrations: the object store's bucket exists and answers.

``python -m persistence.bootstrap`` (the compose ``migrate`` service runs it after ``alembic``).
"""

from __future__ import annotations

from persistence.objects import ensure_bucket, open_object_store
from persistence.settings import get_settings


def main() -> None:
    store = open_object_store(get_settings())
    ensure_bucket(store)
    store.ping()
    print(f"object store ready: {store!r}")


if __name__ == "__main__":
    main()
