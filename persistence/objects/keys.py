"""Object keys: ``tenants/<tenant>/<kind>/<resource>/<name>``, checked so that no key can climb out of
its root or address another tenant's prefix."""

from __future__ import annotations

import re

MAX_KEY_BYTES = 1024  # S3's limit
# One key part: starts alphanumeric (so never "." / ".." / hidden), then a conservative alphabet.
KEY_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a relative key that cannot climb out of its root, else ``ValueError``."""
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"object key must be 1 to {MAX_KEY_BYTES} bytes long")
    if "\\" in key or any(ord(char) < 32 or char == "\x7f" for char in key):
        raise ValueError(f"object key {key!r} contains a backslash or a control character")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError(f"object key {key!r} is absolute or has an empty, '.' or '..' segment")
    return key


def _check_key_part(label: str, value: str) -> None:
    if not KEY_PART.fullmatch(value):
        raise ValueError(
            f"{label} {value!r} is not a valid key part: 1-128 characters of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )


def resource_prefix(tenant_id: str, kind: str, resource_id: str) -> str:
    """The folder holding one resource's objects, e.g. ``tenants/t1/models/m7/``."""
    for label, value in (("tenant_id", tenant_id), ("kind", kind), ("resource_id", resource_id)):
        _check_key_part(label, value)
    return f"tenants/{tenant_id}/{kind}/{resource_id}/"


def object_key(tenant_id: str, kind: str, resource_id: str, name: str) -> str:
    """``tenants/<tenant>/<kind>/<resource>/<name>``; every part is checked so that no tenant can
    address another tenant's prefix."""
    _check_key_part("name", name)
    return resource_prefix(tenant_id, kind, resource_id) + name


def folder_prefix(prefix: str) -> str:
    """``a/b`` or ``a/b/`` → ``a/b/``: prefixes are folders, so ``u1`` never matches ``u10``."""
    return validate_key(prefix.rstrip("/")) + "/"
