"""``/v1/webhooks``: endpoints that receive signed events, and their deliveries (ARCHITECTURE.md §7.5)."""
