"""Service-side pieces of the WebSocket sync transport (spec/websocket.md).

:class:`Outbox` is one connection's bounded outgoing queue; :class:`WebSocketHub`
counts the open connections and what happened to them, so tests and operators
can see that no connection buffers without limit.
"""

from __future__ import annotations

from homeserver.ws.outbox import Outbox, OutboxFull, WebSocketHub, WebSocketStatistics
from homeserver.ws.stream import StreamStatistics, SyncStreams, membership_changed

__all__ = [
    "Outbox",
    "OutboxFull",
    "StreamStatistics",
    "SyncStreams",
    "WebSocketHub",
    "WebSocketStatistics",
    "membership_changed",
]
