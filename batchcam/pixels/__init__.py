"""Images and heatmaps as numpy arrays and PNGs, with numpy and Pillow only.

The API process decodes uploads and draws heatmaps with this package; it must never import torch
or matplotlib (issue 15), so neither this ``__init__`` nor its modules import anything heavier.
"""
