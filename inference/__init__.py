"""Report-generation backends and image preprocessing.

Plain Python and torch: nothing here imports Django or ``reviewapp`` (a test enforces it), so
the same code runs in a Celery GPU worker, a benchmark or a notebook. Callers hand in file
paths and ids (:mod:`inference.types`) and get text plus a reproducibility record back.
"""
