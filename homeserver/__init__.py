"""Plait's core: the pure protocol, storage, services and our HTTP server.

Layers (see ../DESIGN.md): ``core`` is pure (no I/O), ``storage`` is the only
place that talks SQL, services sit on top, ``http`` is the transport that the
API packages (``client_api``, ``federation``) plug their routes into.
This package never imports ``client_api`` or ``federation``.
"""

__version__ = "0.1.0"
