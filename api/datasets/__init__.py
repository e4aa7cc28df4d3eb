"""Datasets over HTTP: the built-in ones and uploads (validated, content-hashed, immutable)."""
