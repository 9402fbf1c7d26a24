"""The executorch export format: its converter, checks and its row of the exporter table (exporter.py)."""
