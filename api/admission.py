"""At most as many requests at once, per API process, as its database connections can serve.

A request runs its route (and the Guard's and the audit trail's database work) on threads of the
server's thread pool (40 per process), and each holds a database connection of the engine's pool
(15 by default) from its first query until its session closes.  Admitted beyond what the pool
holds, requests that took threads wait for connections held by requests that wait for threads to
end: a burst of a few hundred clients stalled the API for the pool's 30 s timeout and failed a
third of them (docs/benchmarks.md, Load).  Admitted at most as many as the pool holds (a request
holds one connection at a time), the others wait their turn in the event loop, holding nothing.
The event stream (``GET /v1/events``) is not counted: it lasts, and takes a connection only for
the moment it reads.

Why not a library: the limit follows the engine's own pool, an ASGI semaphore of a few lines."""

from __future__ import annotations

import asyncio
import weakref

from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

UNCOUNTED = ("/v1/events",)


def capacity(engine: Engine) -> int | None:
    """How many requests may run at once on ``engine``'s pool; None for a pool without a bound."""
    size = getattr(engine.pool, "size", None)
    if not callable(size):
        return None
    overflow = max(0, int(getattr(engine.pool, "_max_overflow", 0)))
    return max(1, int(size()) + overflow)


class Admission:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.limit = capacity(engine)
        # One count per event loop: a server has one; a test client may run one per thread, and an
        # asyncio semaphore belongs to one loop.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit is None or scope["type"] != "http" or scope["path"] in UNCOUNTED:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        async with slots:
            await self.app(scope, receive, send)
