"""Explanations over HTTP: heatmaps and predictions for new images, on demand."""
