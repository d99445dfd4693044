"""Shared test helpers: factories, local provider apps, servers."""
