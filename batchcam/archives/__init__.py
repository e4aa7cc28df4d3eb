"""Safe reading of uploaded zip and ``.npz`` archives, with the standard library and numpy only.

Dataset uploads (``batchcam.data``) and explanation uploads (``batchcam.pixels.npz_images``, read by
the torch-free API process) both check an archive with this package before anything is inflated.
"""
