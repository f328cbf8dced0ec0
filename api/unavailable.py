"""The outermost ASGI middleware: while the database cannot be reached (a PostgreSQL restarting, a
connection cut, SQLite's file locked beyond its wait), every request that needs it is answered
``503`` problem+json with ``Retry-After``, never a ``500``: nothing was done (the request's
transaction could not commit), and the same request may be sent again.  Whatever raised it — the
guard reading the token, a route, the audit trail recording the answer — the client reads the
same answer; the server's log says what the database driver said (the first line of it)."""

from __future__ import annotations

import logging

from api.guard import ASGIApp, Message, Receive, Scope, Send, answer
from orchestrator.core.db import database_unavailable, unavailable_detail

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DETAIL = "the database does not answer just now; nothing was done: try again in a few seconds"


class DatabaseUnavailable:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if not database_unavailable(exc) or started:
                raise
            log.warning("%s %s answered 503: the database does not answer (%s)", scope["method"], scope["path"],
                        unavailable_detail(exc))
            await answer(send, 503, "Service unavailable", DETAIL, instance=scope["path"],
                         **{"Retry-After": str(RETRY_AFTER_SECONDS)})
