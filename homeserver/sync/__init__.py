"""/sync: filters, history visibility and the sync service."""
