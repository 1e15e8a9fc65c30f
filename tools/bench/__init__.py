"""Benchmarks and load generators; they only ever target loopback addresses."""
