"""A Starlette app served by uvicorn in a daemon thread on 127.0.0.1 (or any host): what the replay
server, the test VTN and the OpenADR push receiver share. Why a thread: tests, benchmarks and the
CLI need the server listening while their own code goes on, and a real socket exercises exactly the
transport the clients use in production."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

START_TIMEOUT_S = 10.0


@dataclass
class Served:
    """A running server: stop it with :meth:`stop`; ``port`` is the one bound (``port=0`` asks
    the OS for a free one)."""

    server: Any
    thread: threading.Thread
    port: int

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)


def serve(app, *, host: str, port: int, name: str, what: str, **config) -> Served:
    """Serve ``app`` in a daemon thread named ``name``; returns once the socket is bound. ``what``
    names the server in errors; ``config``: extra ``uvicorn.Config`` settings (e.g.
    ``date_header=False``)."""
    import uvicorn

    cfg = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        lifespan="off",
        **config,
    )
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{what} failed to start on {host}:{port}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{what} did not start within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
    return Served(server, thread, server.servers[0].sockets[0].getsockname()[1])
