"""What can go wrong when talking to the object store, independent of the backend.

Messages name the operation, the location and the kind of failure only: never credentials, never
the raw text of a backend exception (which may echo request details).
"""

from __future__ import annotations


class ObjectStoreError(Exception):
    """An object-store failure that retrying will not fix (access denied, bucket missing, ...)."""


class ObjectExistsError(ObjectStoreError):
    """A write-once key already holds an object; the stored object was left untouched."""


class ObjectNotFoundError(ObjectStoreError):
    """No object is stored under the key."""


class ObjectStoreUnavailableError(ObjectStoreError):
    """The store cannot be reached now (endpoint down, timeouts, server errors); worth retrying.

    ``ping`` raises it for any reason the store is not ready for use, misconfiguration included.
    """
