"""The experiment harness behind ``benchmarks/reproduce.py``: grids of runs, their results, tables, figures.

One concept per module: ``cells`` (what one run is), ``grids`` (named sets of cells), ``results``
(the JSON-lines log that makes a grid resumable), ``runner`` (one cell through the library's
pipeline), ``tables`` (mean ± std over seeds) and ``figures`` (pictures across runs).
"""
