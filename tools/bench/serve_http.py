"""A bare HTTP server with one versions-like route, for load tests in their own process.

``python -m tools.bench.serve_http --port 8099`` (pin it with ``taskset -c 0``
and point ``wrk`` or ``plait bench http`` at it from another core).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import sys

import trio

from homeserver.config import HttpConfig
from homeserver.http import Request, Response, Router, serve_http

VERSIONS = {
    "versions": [
        "v1.1",
        "v1.2",
        "v1.3",
        "v1.4",
        "v1.5",
        "v1.6",
        "v1.7",
        "v1.8",
        "v1.9",
        "v1.10",
        "v1.11",
    ],
    "unstable_features": {"org.matrix.msc3575": False},
}


async def versions(request: Request) -> Response:
    return Response.json(VERSIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.serve_http")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--access-log", metavar="FILE", help="write the access log here")
    args = parser.parse_args(argv)
    if args.access_log:
        # Buffered: a write per request would cost more than the request itself.
        target = logging.FileHandler(args.access_log)
        target.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        buffered = logging.handlers.MemoryHandler(
            1000, flushLevel=logging.ERROR, target=target, flushOnClose=True
        )
        logging.getLogger("plait.access").addHandler(buffered)
        logging.getLogger("plait.access").setLevel(logging.INFO)
    router = Router()
    router.add("GET", "/_matrix/client/versions", versions)
    config = HttpConfig()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(lambda: serve_http(router, host=args.host, port=args.port, config=config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
