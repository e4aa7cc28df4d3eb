"""The webhook sender: claims due deliveries, signs and POSTs them, records each attempt (§7.5)."""
