"""Explanations: one attempt's run, its inputs and batches, the model cache, its lease, clean-up."""
