"""trio-websocket is imported by the first upgrade; a burst of first upgrades all get it whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import trio
    from homeserver.http.websocket import load_trio_websocket

    assert "trio_websocket" not in sys.modules

    async def main():
        got = []

        async def upgrade(i):
            # Staggered across the import's own duration (tens of milliseconds).
            await trio.sleep(i * 0.002)
            module = await load_trio_websocket()
            got.append(hasattr(module, "wrap_server_stream"))

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(upgrade, i)
        print(sum(got), len(got))

    trio.run(main)
    """
)


def test_concurrent_first_upgrades_get_the_whole_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["40", "40"]
