"""The study's tables: each fetched (a shipped file by its sha256, or a scikit-learn loader) and
prepared into its splits."""
