"""The HTTP listener: uvicorn as one task on the daemon's own event loop.

`HttpServer.bind()` opens the listening socket first (so a busy port fails
the start in one line, and port 0 learns its number before anything runs);
`run()` serves until cancelled, then stops gracefully: no new connections,
open event streams told to end (`app.state.stopping`), and whatever is still
running after `GRACE_S` cancelled. uvicorn never installs signal handlers
here: the daemon owns SIGINT and SIGTERM (`capture_signals` is a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

GRACE_S = 2.0  # real seconds open requests get to finish when the server stops


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon's loop handles the signals; uvicorn must not replace them.
        yield


class HttpServer:
    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.tls = cert_file is not None
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            ssl_certfile=cert_file,
            ssl_keyfile=key_file,
            timeout_graceful_shutdown=int(GRACE_S),
            server_header=False,
        )
        self._sock: socket.socket | None = None

    def bind(self) -> None:
        """Open the listening socket; OSError (address in use...) if it cannot."""
        if self._sock is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = socket.gethostname()
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def run(self) -> None:
        self.bind()
        assert self._sock is not None
        self.config.load()  # TLS files are read here: a bad one fails the start
        server = _EmbeddedServer(self.config)
        serving = asyncio.create_task(server.serve(sockets=[self._sock]), name="http-serve")
        templates = getattr(self.app.state, "templates", None)
        if templates is not None:
            # Off the event loop, while the first requests are already taken.
            warming = asyncio.create_task(asyncio.to_thread(templates.warm), name="http-warm")
        log.info("console and API at %s", self.url)
        try:
            await asyncio.shield(serving)
        finally:
            if templates is not None:
                await asyncio.gather(warming, return_exceptions=True)
            self.app.state.stopping.set()
            board = getattr(self.app.state, "board", None)
            if board is not None:
                await board.aclose()
            server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(serving), GRACE_S + 3)
            if not serving.done():
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
            self._sock.close()
            self._sock = None
