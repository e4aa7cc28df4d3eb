"""The links of a paged list page: back to the newest page, and on to the next (the API's cursor)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class ListLinks:
    first: str | None  # None on the first page
    next: str | None  # None on the last page


def list_links(
    path: str, filters: Mapping[str, str], cursor: str | None, next_cursor: str | None
) -> ListLinks:
    """Links that keep the page's filters; ``cursor`` is this page's, ``next_cursor`` the API's next."""
    return ListLinks(
        first=f"{path}?{urlencode(filters)}" if cursor else None,
        next=f"{path}?{urlencode({**filters, 'cursor': next_cursor})}" if next_cursor else None,
    )
