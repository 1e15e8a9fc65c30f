"""Room timelines: sending messages, reading history (/messages, /context, /event)."""
