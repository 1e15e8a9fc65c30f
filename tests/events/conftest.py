"""Fixtures for the event pipeline: the event store and the service (``database`` is shared)."""

from __future__ import annotations

import itertools

import pytest
from dag_checks import SERVER_NAME, SIGNING_KEY

from homeserver.events.creation import EventCreationService, StreamNotifier
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore


@pytest.fixture
def store(database: Database) -> EventStore:
    return EventStore(database)


@pytest.fixture
def notifier() -> StreamNotifier:
    return StreamNotifier()


@pytest.fixture
def service(store: EventStore, notifier: StreamNotifier) -> EventCreationService:
    # A deterministic clock: each event gets the next millisecond.
    ticks = itertools.count(1_700_000_000_000)
    return EventCreationService(
        store,
        server_name=SERVER_NAME,
        signing_key=SIGNING_KEY,
        key_id="ed25519:test",
        clock=lambda: next(ticks),
        on_new_event=notifier.on_new_event,
    )
