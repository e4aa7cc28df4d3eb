"""Webhooks shared by the API and the workers: event names and payloads, the outbox, the deliveries'
schedule and claims, the signing secrets, and which receivers may be reached (docs/ARCHITECTURE.md §7.5)."""
