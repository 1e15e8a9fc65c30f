"""Synapse as the comparison point of ``make bench-compare``: its config and a launcher."""
