"""Simulated cluster services for BOS."""
