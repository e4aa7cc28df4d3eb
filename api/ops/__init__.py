"""Operations: health, readiness and Prometheus metrics (no API key needed)."""
