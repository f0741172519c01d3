"""Northwind Post & Mobile, the demo company that `make run` searches (seed.py, dsar.yaml)."""
