"""End-to-end encryption support: the server stores and routes keys, never plaintext.

* :mod:`homeserver.e2e.validation`: pure checks of uploaded key objects.
* :mod:`homeserver.e2e.keys`: device, one-time, fallback and cross-signing keys,
  signatures, and the ``device_lists`` stream.
* :mod:`homeserver.e2e.to_device`: send-to-device queues (``to_device`` stream).
* :mod:`homeserver.e2e.backup`: server-side key backup.
"""
