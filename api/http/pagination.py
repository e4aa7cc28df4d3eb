"""Cursor pagination over (created_at, id), newest first: stable while rows are being added."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from api.http.errors import ProblemError
from api.http.json_bodies import loads_client_json

Row = TypeVar("Row")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Cursor:
    """The last row of a page; the next page starts strictly after it."""

    created_at: datetime
    id: uuid.UUID


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), str(cursor.id)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> Cursor:
    """The cursor a previous page handed out; anything else is a 400 problem."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created_at, row_id = loads_client_json(raw)
        cursor = Cursor(datetime.fromisoformat(created_at), uuid.UUID(row_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise ProblemError(
            400, "invalid_cursor", "the cursor is not one this API handed out; use links.next as given"
        ) from error
    if cursor.created_at.tzinfo is None:
        raise ProblemError(400, "invalid_cursor", "the cursor is not one this API handed out")
    return cursor


def newest_first_page(
    query: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    *,
    after: Cursor | None,
    limit: int,
) -> Select[Any]:
    """``query`` narrowed to one page (plus one row, which tells whether a next page exists)."""
    if after is not None:
        query = query.where(strictly_older(created_at, row_id, after))
    return query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)


def strictly_older(
    created_at: InstrumentedAttribute[datetime], row_id: InstrumentedAttribute[uuid.UUID], cursor: Cursor
) -> ColumnElement[bool]:
    return tuple_(created_at, row_id) < tuple_(cursor.created_at, cursor.id)


def split_page(
    rows: list[Row], limit: int, cursor_of: Callable[[Row], Cursor]
) -> tuple[list[Row], str | None]:
    """The page's rows and the next page's cursor (None when this is the last page)."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(cursor_of(page[-1]))


def next_page_link(
    path: str, next_cursor: str | None, limit: int, filters: Sequence[tuple[str, str]] = ()
) -> str | None:
    """links.next: the same limit and filters, starting after the cursor (None on the last page)."""
    if next_cursor is None:
        return None
    return f"{path}?{urlencode([('limit', str(limit)), *filters, ('cursor', next_cursor)])}"
