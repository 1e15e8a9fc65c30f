"""The composition root: build the HomeServer, plug in the APIs, run the listeners.

Lifetime: ``run_homeserver`` opens the HomeServer, starts one HTTP listener for
the client API (and a TLS one when configured) and reports a
:class:`RunningHomeServer` through ``task_status``. ``begin_shutdown`` stops
accepting; in-flight requests get ``http.shutdown_grace`` seconds; then the
database closes. ``main_serve`` ties that to SIGINT/SIGTERM (a second signal
stops at once).
"""

from __future__ import annotations

import gc
import linecache
import logging
import resource
import signal

import attrs
import trio

from client_api import build_router
from homeserver import logs
from homeserver.config import Config, split_host_port
from homeserver.homeserver import HomeServer
from homeserver.http.server import HttpServer
from homeserver.http.tls import load_ssl_context

log = logging.getLogger("plait")


@attrs.define
class RunningHomeServer:
    hs: HomeServer
    port: int
    tls_port: int | None
    servers: list[HttpServer]

    def begin_shutdown(self) -> None:
        for server in self.servers:
            server.begin_shutdown()


async def run_homeserver(
    config: Config,
    *,
    task_status: trio.TaskStatus[RunningHomeServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    hs = await HomeServer.open(config)
    try:
        router = build_router(hs)
        servers = [
            HttpServer(router, host=config.listen_host, port=config.listen_port, config=config.http)
        ]
        if config.tls.listen:
            host, port = split_host_port(config.tls.listen)
            context = load_ssl_context(config.tls.cert_path, config.tls.key_path)
            servers.append(
                HttpServer(router, host=host, port=port, config=config.http, ssl_context=context)
            )
        async with trio.open_nursery() as nursery:
            services = trio.CancelScope()

            async def run_services(*, task_status: trio.TaskStatus[None]) -> None:
                with services:
                    await hs.run_services(task_status=task_status)

            await nursery.start(run_services)
            async with trio.open_nursery() as listeners:
                ports = [await listeners.start(server.run) for server in servers]
                task_status.started(
                    RunningHomeServer(hs, ports[0], ports[1] if len(ports) > 1 else None, servers)
                )
            # Every listener has drained its connections: stop the background services.
            services.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await hs.aclose()


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; the soft limit now.

    Every connection is a file descriptor, and the usual soft limit (1024) is
    far below the 10,000 idle WebSockets one process should hold.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit stays unlimited; the soft one gets a finite target.
    target = max(soft, 1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open files limit above %d", soft)
    return soft


def freeze_startup_heap() -> int:
    """Move every object alive after startup out of the garbage collector's sight.

    Imports, the router, compiled SQL and the configuration live as long as the
    process. Left in the oldest generation, each full collection walks them
    again: measured on the delivery benchmark, a full collection during a run
    took 54-107 ms, a pause every waiting client sees. Frozen, the same
    collection takes 4-6 ms. Returns how many objects were frozen.

    First it empties ``linecache``: attrs and SQLAlchemy put the source of
    every method they generate there (about 280 entries, 0.6 MB), read only
    to print those lines in a traceback, which then shows the frame without them.
    """
    linecache.clearcache()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def main_serve(config: Config, log_handler: logs.BatchedStreamHandler | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully.

    ``log_handler``, when given, gets its batched lines flushed while serving.
    """
    log.info("open files limit: %d", raise_open_files_limit())
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            if log_handler is not None:
                nursery.start_soon(logs.flush_periodically, log_handler)

            async def serve(*, task_status: trio.TaskStatus[RunningHomeServer]) -> None:
                await run_homeserver(config, task_status=task_status)
                # Every listener has finished: stop watching for signals.
                nursery.cancel_scope.cancel()

            running: RunningHomeServer = await nursery.start(serve)
            log.debug("objects frozen after startup: %d", freeze_startup_heap())
            log.info(
                "Plait serving %s on http://%s:%d (registration: %s)",
                config.server_name,
                config.listen_host,
                running.port,
                config.effective_registration,
            )
            if running.tls_port is not None:
                log.info("TLS listener on port %d", running.tls_port)
            if log_handler is not None:
                log_handler.flush()  # the "serving" line, now rather than in a moment
            first = True
            async for signum in signals:
                if first:
                    first = False
                    log.info(
                        "%s: shutting down (in-flight requests get %.0f s)",
                        signal.Signals(signum).name,
                        config.http.shutdown_grace,
                    )
                    running.begin_shutdown()
                else:
                    log.warning("second signal: stopping now")
                    nursery.cancel_scope.cancel()
