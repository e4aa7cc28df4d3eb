"""The HTTP API (FastAPI): validation, auth, problem+json errors, event streams. No training here."""
