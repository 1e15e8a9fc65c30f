"""Rooms: creation with presets, membership, state, aliases and the directories."""
