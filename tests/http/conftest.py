from __future__ import annotations

import pytest
import trio
from http_harness import Running, start


@pytest.fixture
async def running(nursery: trio.Nursery) -> Running:
    return await start(nursery)
