"""Models over HTTP: what succeeded jobs produced (summaries, artifacts, the misclassified gallery)."""
