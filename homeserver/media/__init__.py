"""The media repository (Matrix content repository): store, service, thumbnails, serving rules."""
