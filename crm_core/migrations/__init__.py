"""Core schema migrations (``NNNN_slug.py`` files, each with ``up(migrator, db)``)."""
