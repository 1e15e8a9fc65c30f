"""The pure protocol core: plain functions over plain values, no I/O, no clock."""
