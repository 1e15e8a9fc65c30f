"""The Matrix Server-Server API: signing keys, signed requests, transaction queues.

Nothing here yet: federation arrives with its own issue. This package never imports
``client_api``.
"""
