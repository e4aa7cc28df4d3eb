"""The object store the API and the workers share: S3 (AWS, MinIO, SeaweedFS) or a local folder.

Import the store from here: ``store`` says what every store does, ``keys`` how objects are named,
``errors`` what can go wrong; ``s3`` and ``local`` are the two backends, ``factory`` picks one from the
settings.
"""

from persistence.objects.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from persistence.objects.factory import ensure_bucket, open_object_store
from persistence.objects.keys import object_key, resource_prefix, validate_key
from persistence.objects.local import LocalObjectStore
from persistence.objects.s3 import S3Connection, S3ObjectStore
from persistence.objects.store import CHUNK_SIZE, ObjectStore, StoredObject

__all__ = [
    "CHUNK_SIZE",
    "LocalObjectStore",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailableError",
    "S3Connection",
    "S3ObjectStore",
    "StoredObject",
    "ensure_bucket",
    "object_key",
    "open_object_store",
    "resource_prefix",
    "validate_key",
]
