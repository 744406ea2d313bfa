"""Stage report: every dataset's tables and figures (dataset.py), then the page across them (overview.py)."""
