"""Pydantic models at the HTTP boundary: what requests may hold and what responses promise."""
