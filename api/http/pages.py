"""What every cursor-paginated list shares."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PageLinks(BaseModel):
    next: str | None = Field(None, description="The next page, or null on the last page.")
