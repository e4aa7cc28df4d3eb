"""Training jobs in the database: their lease transitions, events, epochs and checkpoints."""
