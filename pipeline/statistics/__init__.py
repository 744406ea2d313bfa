"""Verdicts: per dataset against the reference (per_dataset.py), and across datasets (across.py)."""
