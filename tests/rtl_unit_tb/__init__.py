"""Helpers for the RTL tests: hand-made random graphs and their golden vectors."""
