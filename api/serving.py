"""Serving the application with uvicorn so that its endless answers end with the server.

uvicorn shuts down by waiting for the answers in progress to finish before the application's
lifespan ends; an event stream (``GET /v1/events``) never finishes on its own.  ``Server`` sets
``app.state.closing`` as soon as the shutdown begins (a signal, or ``should_exit``), and every
stream ends at its next tick (api/routers/events.py)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn


def closing_event(app: Any) -> threading.Event:
    event = getattr(app.state, "closing", None)
    if not isinstance(event, threading.Event):
        event = threading.Event()
        app.state.closing = event
    return event


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self.config.app, "state", None)
        if state is not None:
            closing_event(self.config.app).set()
        await super().shutdown(sockets)


def run(app: Any, **config: Any) -> None:
    """``uvicorn.run(app, ...)`` with ``Server``."""
    Server(uvicorn.Config(app, **config)).run()
