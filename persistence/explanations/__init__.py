"""Explanations: their lease transitions, the sweep's side, and how their objects are laid out."""
